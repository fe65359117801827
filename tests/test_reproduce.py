"""`fairskl reproduce vae-fairness` at a tiny scale, its report, resume and refusals (the NIR
study: test_nir_study.py)."""

import re

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from fairskl.cli import main
from fairskl.experiments import _representation, _reproduce

TINY_VAE = dict(n_samples=900, image_size=32, channel_width=8, latent_channels=4, max_epochs=1,
                n_train=60, n_test_per_group=20, n_repeats=2)


@pytest.mark.slow
def test_reproduce_vae_resumes_to_the_same_tables(tmp_path, monkeypatch):
    full = tmp_path / "full"
    _reproduce.reproduce_vae_fairness(full, scale=TINY_VAE, verbose=0)
    assert {"report.md", "report.html", "results.csv", "samples.csv", "by_mix.png",
            "prevalence.png", "error_by_label.png"} <= {p.name for p in full.iterdir()}
    text = (full / "report.md").read_text()
    assert "MSE < 0.07" in text
    assert int(re.search(r"Wall time (\d+) s", text).group(1)) >= 1  # the whole run, not its end

    # Kill the run after 3 of its 6 cells, then resume it.
    run_cell, calls = _representation._run_cell, []

    def dies_after_three(*args, **kwargs):
        if len(calls) == 3:
            raise KeyboardInterrupt("killed")
        calls.append(1)
        return run_cell(*args, **kwargs)

    part = tmp_path / "part"
    monkeypatch.setattr(_representation, "_run_cell", dies_after_three)
    with pytest.raises(KeyboardInterrupt):
        _reproduce.reproduce_vae_fairness(part, scale=TINY_VAE, verbose=0)
    assert len(list((part / "checkpoints").glob("cell_*.samples.csv"))) == 3
    calls.clear()
    monkeypatch.setattr(_representation, "_run_cell", run_cell)
    _reproduce.reproduce_vae_fairness(part, scale=TINY_VAE, resume=True, verbose=0)
    for name in ["results.csv", "samples.csv"]:
        assert (part / name).read_text() == (full / name).read_text()


def test_missing_real_data_is_reported_before_any_work(tmp_path, capsys):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_:
        main(["reproduce", "nir", "--data", "ham10000", "--data-home", str(tmp_path / "none"),
              "--out", str(out)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "HAM10000" in err or "ham10000" in err
    assert not out.exists()


@pytest.mark.parametrize("argv, match", [
    (["reproduce", "nir", "--attribute", "race"], "not available for data='synthetic'"),
    (["reproduce", "vae-fairness", "--resume", "--overwrite"], "not allowed with"),
    (["reproduce", "nir", "--device", "gpu"], "is not a torch device"),
    (["reproduce", "vae-fairness", "--perceptual-weights", "missing.pth"],
     "perceptual_weights='missing.pth'"),
    (["reproduce", "nir", "--overwrite"], "does not hold an earlier fairskl run"),
])
def test_bad_arguments_exit_2(argv, match, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.txt").write_text("not ours")
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--out", str(out)])
    assert exit_.value.code == 2
    assert match in capsys.readouterr().err
    assert (out / "precious.txt").exists()  # nothing deleted


def test_out_that_is_a_file_exits_2(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    with pytest.raises(SystemExit) as exit_:
        main(["reproduce", "nir", "--out", str(tmp_path / "file")])
    assert exit_.value.code == 2
    assert "is a file" in capsys.readouterr().err
