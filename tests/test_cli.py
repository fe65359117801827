"""The ``fairskl`` command line."""

import io
import json
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import fairskl
from fairskl.cli import main
from fairskl.metrics import group_report, tpr_difference


@pytest.fixture
def predictions(tmp_path):
    rng = np.random.RandomState(0)
    n = 500
    frame = pd.DataFrame({
        "label": rng.randint(0, 2, n),
        "sex": rng.choice(["female", "male"], n),
        "site": rng.choice(["A", "B"], n),
    })
    frame["prob"] = np.clip(0.3 * frame.label + rng.uniform(0, 0.7, n), 0, 1)
    path = tmp_path / "predictions.csv"
    frame.to_csv(path, index=False)
    return path, frame


def test_version_and_help():
    out = subprocess.run([sys.executable, "-m", "fairskl.cli", "--version"],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"fairskl {fairskl.__version__}"
    out = subprocess.run([sys.executable, "-m", "fairskl.cli", "--help"],
                         capture_output=True, text=True, check=True).stdout
    assert "audit" in out and "reproduce" in out


def test_demo_is_gone_and_experiments_do_not_import_the_cli(capsys):
    # `fairskl demo` (a baseline-CNN audit) was superseded by `fairskl reproduce nir`, which is
    # what `make demo` runs; the old path imported fairskl.cli from fairskl.experiments.
    with pytest.raises(SystemExit) as exit_info:
        main(["demo"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'demo'" in capsys.readouterr().err
    code = "import sys, fairskl.experiments; assert 'fairskl.cli' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("fmt", ["csv", "json", "text"])
def test_audit_writes_the_report(predictions, tmp_path, fmt, capsys):
    path, frame = predictions
    out = tmp_path / f"report.{fmt}"
    args = [str(path), "--y-true", "label", "--score", "prob", "--group", "sex",
            "--bootstrap", "50", "--format", fmt, "--out", str(out)]
    assert main(["audit", *args]) == 0
    assert capsys.readouterr().out == ""
    expected = group_report(frame.label, frame.prob, sensitive_features=frame.sex,
                            n_bootstrap=50, random_state=0)
    gap = tpr_difference(frame.label, frame.prob >= 0.5, sensitive_features=frame.sex)
    if fmt == "csv":
        pd.testing.assert_frame_equal(pd.read_csv(out), expected, check_dtype=False)
    elif fmt == "json":
        rows = {(r["metric"], r["group"]): r for r in json.loads(out.read_text())}
        assert rows[("tpr_difference", "between groups")]["value"] == pytest.approx(gap)
    else:
        text = out.read_text()
        assert "female" in text and "tpr_difference" in text and f"{gap:.3f}" in text


def test_audit_intersectional_groups_to_stdout(predictions, capsys):
    path, _ = predictions
    code = main(["audit", str(path), "--y-true", "label", "--score", "prob", "--group", "sex",
                 "--group", "site", "--bootstrap", "0"])
    assert code == 0
    assert "sex=male, site=B" in capsys.readouterr().out


@pytest.mark.parametrize(
    "change, args, message",
    [
        (None, ["--group", "age"], r"column\(s\) \['age'\] not in"),
        (lambda f: f.assign(label=f.label * 2 - (f.index % 3 == 0)), [], "binary labels"),
        (lambda f: f.assign(prob=f.prob.where(f.index != 7)), [], "'prob' has missing values"),
        (lambda f: f.assign(sex="female"), [], "single group"),
    ],
)
def test_audit_errors_exit_2_and_write_nothing(predictions, tmp_path, change, args, message,
                                               capsys):
    path, frame = predictions
    if change is not None:
        change(frame).to_csv(path, index=False)
    out = tmp_path / "report.csv"
    group = [] if args else ["--group", "sex"]
    with pytest.raises(SystemExit) as exit_info:
        main(["audit", str(path), "--y-true", "label", "--score", "prob", *group, *args,
              "--out", str(out)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert re.search(message, err), err
    assert not out.exists() and list(tmp_path.iterdir()) == [path]


def test_audit_missing_file_exits_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["audit", str(tmp_path / "nope.csv"), "--y-true", "y", "--score", "s",
              "--group", "g"])
    assert exit_info.value.code == 2
    assert "nope.csv" in capsys.readouterr().err


def test_audit_string_labels_with_pos_label(predictions, capsys):
    path, frame = predictions
    frame.assign(label=np.where(frame.label == 1, "malignant", "benign")).to_csv(path, index=False)
    code = main(["audit", str(path), "--y-true", "label", "--score", "prob", "--group", "sex",
                 "--pos-label", "malignant", "--bootstrap", "0", "--format", "csv"])
    assert code == 0
    report = pd.read_csv(io.StringIO(capsys.readouterr().out))
    expected = group_report(frame.label, frame.prob, sensitive_features=frame.sex,
                            n_bootstrap=0)
    pd.testing.assert_frame_equal(report, expected, check_dtype=False)
