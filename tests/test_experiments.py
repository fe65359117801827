"""The main job: fairskl demo / run_baseline_audit."""

import pandas as pd
import pytest

from fairskl.cli import main
from fairskl.metrics import group_report


@pytest.mark.slow
def test_demo_writes_a_complete_report(tmp_path, capsys):
    out = tmp_path / "demo"
    code = main(["demo", "--out", str(out), "--n-samples", "600", "--image-size", "16",
                 "--epochs", "2", "--bootstrap", "50", "--quiet"])
    assert code == 0
    assert capsys.readouterr().out.strip() == f"report: {out / 'report.md'}"
    names = sorted(p.name for p in out.iterdir())
    assert names == ["examples.png", "groups_age_group.png", "groups_sex.png",
                     "groups_skin_type.png", "report.csv", "report.md"]
    report = pd.read_csv(out / "report.csv")
    assert set(report.attribute) == {"sex", "age_group", "skin_type"}
    assert report.query("kind == 'group' and attribute == 'skin_type'").group.nunique() == 6
    text = (out / "report.md").read_text()
    assert "tpr_difference" in text and "![examples](examples.png)" in text


@pytest.mark.slow
def test_run_baseline_audit_report_matches_group_report(tmp_path):
    from fairskl.datasets import make_skin_lesions
    from fairskl.experiments import run_baseline_audit

    result = run_baseline_audit(tmp_path, n_samples=400, image_size=16, max_epochs=1,
                                attributes=["sex"], n_bootstrap=0, verbose=0)
    # recompute the held-out report from the fitted network on the same split
    from sklearn.model_selection import train_test_split

    data = make_skin_lesions(400, 16, bias=1.5, random_state=0)
    _, X_test, _, y_test, _, A_test = train_test_split(
        data.images, data.target, data.sensitive, test_size=0.3, stratify=data.target,
        random_state=0)
    expected = group_report(y_test, result.estimator.predict_proba(X_test)[:, 1],
                            sensitive_features=A_test["sex"].to_numpy(), n_bootstrap=0)
    got = result.report.drop(columns="attribute")
    pd.testing.assert_frame_equal(got, expected)
    with pytest.raises(ValueError, match="not sensitive columns"):
        run_baseline_audit(tmp_path, n_samples=50, attributes=["race"], verbose=0)
