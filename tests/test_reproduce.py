"""`fairskl reproduce vae-fairness` at a tiny scale, its report, resume and refusals (the NIR
study: test_reproduce_nir.py)."""

import re

import numpy as np
import pandas as pd
import pytest
import torch

from fairskl import PerceptualVAE
from fairskl.cli import main
from fairskl.experiments import _representation, _reproduce_vae

TINY_VAE = dict(n_samples=900, image_size=32, channel_width=8, latent_channels=4, max_epochs=1,
                n_train=60, n_test_per_group=20, n_repeats=2, n_shared_per_group=15)


@pytest.mark.slow
def test_reproduce_vae_resumes_to_the_same_tables(tmp_path, monkeypatch):
    full = tmp_path / "full"
    _reproduce_vae.reproduce_vae_fairness(full, scale=TINY_VAE, verbose=0)
    assert {"report.md", "report.html", "results.csv", "samples.csv", "uncertainty.csv",
            "gaps.csv", "mix_changes.csv", "by_mix.png", "reconstructions.png",
            "prevalence.png", "error_by_label.png"} <= {p.name for p in full.iterdir()}
    text = (full / "report.md").read_text()
    assert "MSE < 0.07" in text
    for section in ["Training images: draws and distinct images",
                    "Skin tone, or the conditions and sources that come with it?",
                    "Does the gap change between mixes?",
                    "Which uncertainty score flags the dark group?"]:
        assert f"## {section}" in text
    # the per-image table: one row per test image, repeat and mix, with its metadata
    samples = pd.read_csv(full / "samples.csv")
    assert len(samples) == 2 * 3 * 2 * 20
    assert {"fst", "fst_centaur", "label", "nine_partition_label", "three_partition_label",
            "source", "reconstruction_mse", "latent_std", "kl", "elbo", "iwae",
            "decoder_var"} <= set(samples.columns)
    assert samples.groupby("group")["fst"].agg(["min", "max"]).to_dict("index") == {
        "dark": {"min": 5, "max": 6}, "light": {"min": 1, "max": 2}}
    # the shared set is never a test image; the ensemble row is there per mix
    uncertainty = pd.read_csv(full / "uncertainty.csv")
    ensemble = uncertainty[uncertainty.score == "ensemble_disagreement"]
    assert len(ensemble) == 3 and (ensemble.n_images == 30).all()
    gaps = pd.read_csv(full / "gaps.csv")
    assert set(gaps.model) == {"raw", "adjusted"} and len(gaps) == 6
    assert len(pd.read_csv(full / "mix_changes.csv")) == 6
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
        _reproduce_vae.reproduce_vae_fairness(part, scale=TINY_VAE, verbose=0)
    assert len(list((part / "checkpoints").glob("cell_*.samples.csv"))) == 3
    calls.clear()
    monkeypatch.setattr(_representation, "_run_cell", run_cell)
    _reproduce_vae.reproduce_vae_fairness(part, scale=TINY_VAE, resume=True, verbose=0)
    for name in ["results.csv", "samples.csv"]:
        assert (part / name).read_text() == (full / name).read_text()


@pytest.mark.slow
@pytest.mark.parametrize("device", [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                  reason="needs a CUDA device")),
])
def test_reproduce_vae_at_paper_settings_shrunk(tmp_path, device, monkeypatch):
    """The paper's settings (pretrained VGG from a local file, clipping, AMP) on tiny data."""
    import torchvision

    torch.manual_seed(0)
    weights = tmp_path / "vgg19.pth"
    torch.save(torchvision.models.vgg19(weights=None).state_dict(), weights)
    fits = []
    fit = PerceptualVAE.fit

    def recording_fit(self, X, y=None, **kwargs):
        fits.append(self.get_params())
        return fit(self, X, y, **kwargs)

    monkeypatch.setattr(PerceptualVAE, "fit", recording_fit)
    shrunk = {**_reproduce_vae.VAE_SCALES["paper"], "perceptual_weights": str(weights),
              **dict(n_samples=700, image_size=32, n_stages=2, channel_width=4,
                     latent_channels=4, max_epochs=1, batch_size=8, n_train=16,
                     n_test_per_group=8, n_repeats=1, n_shared_per_group=0)}
    path = _reproduce_vae.reproduce_vae_fairness(tmp_path / "out", scale=shrunk, device=device,
                                             verbose=0)
    assert len(fits) == 3  # one per mix
    params = fits[0]
    assert params["perceptual_weights"] == str(weights) and params["perceptual_weight"] == 1
    assert params["gradient_clip_norm"] == 10.0 and params["lr"] == 1e-4
    assert params["perceptual_imagenet_normalization"] is False
    assert params["perceptual_reduction"] == "mean" and params["augment"] == "hflip"
    assert params["precision"] == ("fp16" if device == "cuda" else "float32")
    text = path.read_text()
    assert f"the VGG19 weights {str(weights)!r}" in text
    assert "clipped at 10.0" in text and "on the paper's [-1, 1] scale" in text
    results = pd.read_csv(path.parent / "results.csv")
    # every score is defined, but active_latent_std when this short fit leaves no latent unit
    # active (NaN, with a warning, rather than a mean over no unit)
    assert results.query("metric != 'active_latent_std'")["value"].notna().all()


def test_vae_study_on_fitzpatrick17k_files(tmp_path):
    """The real loader's path: crop preprocessing, the second annotation as group definition,
    the atlases as sources, on generated files in the data set's layout."""
    from fairskl.datasets._fixtures import write_fitzpatrick17k

    home = write_fitzpatrick17k(tmp_path / "data", n_samples=400, random_state=0)
    tiny = {**TINY_VAE, "n_train": 30, "n_test_per_group": 10, "n_shared_per_group": 5}
    path = _reproduce_vae.reproduce_vae_fairness(
        tmp_path / "out", data="fitzpatrick17k", data_home=home, scale=tiny,
        settings={"group_definition": "centaur12-56"}, verbose=0)
    samples = pd.read_csv(path.parent / "samples.csv")
    light = samples["group"] == "light"
    assert samples.loc[light, "fst_centaur"].between(1, 2).all()
    assert samples.loc[~light, "fst_centaur"].between(5, 6).all()
    assert set(samples["source"]) == {"atlasdermatologico", "dermaamin"}
    text = path.read_text()
    assert "by the second annotation (fitzpatrick_centaur)" in text
    assert "`resize=crop`" in text and "`group_definition=centaur12-56`" in text


def test_paper_scale_on_fitzpatrick17k_files_streams_the_images(tmp_path, monkeypatch):
    """``--scale paper`` on generated files in Fitzpatrick17k's layout: the VAEs train on the
    image paths with the reference's flips and the crop preprocessing, and every table and
    figure is made from images read from disk."""
    from fairskl.datasets._fixtures import write_fitzpatrick17k

    home = write_fitzpatrick17k(tmp_path / "data", n_samples=400, random_state=0)
    fits = []
    fit = PerceptualVAE.fit

    def recording_fit(self, X, y=None, **kwargs):
        fits.append((self.get_params(), X))
        return fit(self, X, y, **kwargs)

    monkeypatch.setattr(PerceptualVAE, "fit", recording_fit)
    shrunk = {**_reproduce_vae.VAE_SCALES["paper"], "perceptual_weights": None,
              **dict(image_size=32, n_stages=2, channel_width=4, latent_channels=4,
                     max_epochs=1, batch_size=8, n_train=16, n_test_per_group=8, n_repeats=2,
                     n_shared_per_group=5, num_workers=0)}
    path = _reproduce_vae.reproduce_vae_fairness(tmp_path / "out", data="fitzpatrick17k",
                                             data_home=home, scale=shrunk, verbose=0)
    params, X = fits[0]
    assert params["augment"] == "hflip" and params["resize"] == "crop"
    assert params["image_size"] == 32 and len(fits) == 6
    assert all(isinstance(p, str) and p.endswith(".jpg") for p in X)
    uncertainty = pd.read_csv(path.parent / "uncertainty.csv")
    assert "ensemble_disagreement" in set(uncertainty["score"])
    samples = pd.read_csv(path.parent / "samples.csv")
    assert samples["reconstruction_mse"].notna().all()
    assert (path.parent / "reconstructions.png").exists()


def test_group_definitions_and_settings():
    from fairskl.experiments._study_data import vae_data

    config = {**_reproduce_vae.VAE_SCALES["small"], "n_samples": 2000, "image_size": 16}
    counts = {}
    for definition in ["fst12-56", "fst123-456", "centaur12-56"]:
        _, groups, meta, notes = vae_data("synthetic", {**config, "group_definition": definition},
                                          None, 0)
        column = "fst_centaur" if definition.startswith("centaur") else "fst"
        dark = np.asarray(groups) == "dark"
        low = 4 if definition == "fst123-456" else 5
        assert (meta.loc[dark, column] >= low).all() and (meta.loc[~dark, column] < low).all()
        counts[definition] = len(groups)
    assert counts["fst123-456"] == 2000 > counts["fst12-56"]
    with pytest.raises(ValueError, match="unknown settings \\['n_epochs'\\]"):
        _reproduce_vae.reproduce_vae_fairness("unused", settings={"n_epochs": 2})


def test_cli_passes_repeats_groups_and_settings(monkeypatch, tmp_path):
    seen = {}

    def fake(out_dir, **kwargs):
        seen.update(kwargs)
        return tmp_path / "report.md"

    monkeypatch.setattr("fairskl.experiments.reproduce_vae_fairness", fake)
    main(["reproduce", "vae-fairness", "--out", str(tmp_path), "--repeats", "6", "--groups",
          "fst123-456", "--set", "replace=false", "--set", "n_train=500", "--set",
          "resize=squash"])
    assert seen["settings"] == {"replace": False, "n_train": 500, "resize": "squash",
                                "n_repeats": 6, "group_definition": "fst123-456"}


def test_vae_report_compares_on_the_paper_scale():
    results = pd.DataFrame(dict(
        repeat=[0, 0, 1, 1] * 2, mix=pd.Categorical(["all light"] * 4 + ["balanced"] * 4),
        group=["light", "dark"] * 4, train_share=[1, 0, 1, 0] + [0.5] * 4,
        metric="reconstruction_mse", value=[0.01, 0.02, 0.01, 0.02, 0.01, 0.015, 0.012, 0.016]))
    results = pd.concat([results, results.assign(metric="latent_std", value=1.0)])
    report = _reproduce_vae.Report("t")
    _reproduce_vae._vae_report(report, results, [])
    findings = [block[1][0] for block in report.blocks if block[0] == "table"][-1]
    # largest per-group mean over repeats: dark, all light, 0.02 on [0, 1] = 0.08 on [-1, 1]
    assert findings.loc[findings.index[0], "ours"].startswith("no: largest per-group mean 0.0800")
    assert "light better in 100% of the 2 repeats" in findings.loc[findings.index[1], "ours"]


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
