"""`fairskl reproduce nir`: the study at a tiny scale, the paper's protocol, and its audit."""

import json
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from pandas.testing import assert_frame_equal
from scipy import stats
from sklearn.metrics import roc_auc_score

from fairskl import NIRClassifier
from fairskl.cli import main
from fairskl.exceptions import FairnessWarning
from fairskl.experiments import _heldout, _reproduce_nir, _selection
from fairskl.metrics import fpr_difference, tpr_difference

TINY = dict(n_samples=300, n_test=400, image_size=16, max_epochs=2, lambdas=(0.0, 1.0), cv=2,
            seeds=(0, 1), n_bootstrap=30)


@pytest.mark.slow
def test_reproduce_nir_writes_both_scenarios_and_resumes_without_fitting(
        tmp_path, monkeypatch, capsys):
    out = tmp_path / "nir"
    _reproduce_nir.reproduce_nir(out, scale=TINY, verbose=0)
    names = {p.name for p in out.iterdir()}
    assert {"report.md", "report.html", "lambda_study.csv", "heldout.csv", "config.json",
            "lambda_tradeoff.png", "heldout_gaps.png", "incidence_before.png",
            "incidence_after.png", "models"} <= names
    assert not {"compare", "compare.png", "compare_summary.csv"} & names  # opt-in only
    text = (out / "report.md").read_text()
    for needle in ["TPR gap by age", "TPR gap by sex", "FPR gap by sex", "shortcut", "default",
                   "age 60+ excess", "sex male excess", "concentration", "torch 2.",
                   "Wall time", "Primary endpoint", "Holm", "matched", "positive rate",
                   "AUC gap by age", "Per-group rates"]:
        assert needle in text, needle
    assert "Compared with other mitigations" not in text
    heldout = pd.read_csv(out / "heldout.csv")
    assert set(heldout.scenario) == {"default", "shortcut"}
    assert set(heldout.method) == {"0", "1", "change"}
    assert set(heldout.operating_point) == {"0.5", "matched", "threshold-free"}
    assert (heldout.n_seeds == 2).all()
    study = pd.read_csv(out / "lambda_study.csv")
    assert len(study) == 2 * 2 * 8  # lambdas x folds x metrics
    gap_rows = [line for line in text.splitlines() if "gap by" in line or "excess" in line]
    assert gap_rows and not [line for line in gap_rows if "| lower" in line or "| higher" in line]

    with pytest.raises(SystemExit) as exit_:  # a rerun needs --resume or --overwrite
        main(["reproduce", "nir", "--out", str(out), "--quiet"])
    assert exit_.value.code == 2 and "--resume" in capsys.readouterr().err

    def no_fit(*args, **kwargs):
        raise AssertionError("a network was fitted again")

    monkeypatch.setattr("fairskl.experiments.lambda_study", no_fit)
    monkeypatch.setattr(NIRClassifier, "fit", no_fit)
    _reproduce_nir.reproduce_nir(out, scale=TINY, resume=True, verbose=0)
    assert_frame_equal(pd.read_csv(out / "lambda_study.csv"), study)
    assert_frame_equal(pd.read_csv(out / "heldout.csv"), heldout)
    with pytest.raises(ValueError, match=r"other \['attribute'\]"):
        _reproduce_nir.reproduce_nir(out, scale=TINY, attribute="sex", resume=True, verbose=0)


@pytest.mark.slow
def test_paper_protocol_end_to_end_on_cpu_with_a_local_resnet18(tmp_path):
    import torchvision

    from fairskl._backbones import IMAGENET_MEAN

    weights = tmp_path / "resnet18.pth"
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), weights)
    paper = _reproduce_nir.NIR_SCALES["paper"]
    shrunk = {**paper, "n_samples": 160, "n_test": 120, "image_size": 32, "max_epochs": 3,
              "patience": 1, "lambdas": (0.0, 1.0), "cv": 2, "seeds": (0,),
              "n_bootstrap": 10, "predict_batch_size": 64}
    out = tmp_path / "paper"
    _reproduce_nir.reproduce_nir(out, scale=shrunk, weights=str(weights), verbose=0)
    config = json.loads((out / "config.json").read_text())
    assert config["backbone"] == "resnet18" and config["weights"] == str(weights)
    assert config["valid_size"] == 0.15 and config["patience"] == 1
    model = joblib.load(out / "models" / "lambda0_seed0.pkl")["model"]
    assert model.weights == str(weights)
    np.testing.assert_allclose(model.module_.normalization.mean.flatten().numpy(),
                               IMAGENET_MEAN)  # ImageNet scaling inside the network
    stopping = dict(model.callbacks)["early_stopping"]
    assert stopping.load_best and stopping.monitor == "valid_auc"
    assert "valid_auc" in model.history[-1]
    assert "TPR gap by age" in (out / "report.md").read_text()


def test_every_compared_method_trains_with_the_paper_scales_early_stopping():
    """``--scale paper --compare``: each method is the study's network with its callbacks, so
    early stopping scores the validation AUC during training, also for the two-stage methods
    (DFR scored its not yet fitted last layer and failed)."""
    from skorch.helper import SliceDict

    from fairskl.experiments._nir_compare import _estimators

    config = {**_reproduce_nir.NIR_SCALES["paper"], "backbone": "mlp", "weights": None,
              "max_epochs": 3, "streaming": False, "augment": None, "batch_size": 32}
    rng = np.random.RandomState(0)
    X = rng.normal(size=(240, 6)).astype(np.float32)
    y = (X[:, 0] + 0.5 * rng.normal(size=240) > 0).astype(int)
    sex = np.where(rng.rand(240) < 0.5, "male", "female")
    for name, estimator in _estimators(_reproduce_nir._classifier(config, "cpu"),
                                       "tpr_difference").items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FairnessWarning)
            estimator.fit(SliceDict(X=X, split_groups=np.arange(240) // 2, groups=sex), y)
        network = getattr(estimator, "estimator_", estimator)  # the post-processor's ERM
        assert "valid_auc" in network.history[-1], name
        proba = estimator.predict_proba(SliceDict(X=X[:5], groups=sex[:5]))
        assert proba.shape == (5, 2), name


def test_paper_scale_on_ham10000_files_streams_augments_and_keeps_lesions_whole(
        tmp_path, monkeypatch):
    """``--scale paper`` on generated JPEGs in HAM10000's layout: the classifiers train on
    the image paths (decoded batch by batch), flip and crop the training batches, and early
    stopping's validation split never has a lesion on both sides."""
    import torchvision

    from fairskl.datasets._fixtures import write_ham10000
    from fairskl.model_selection import GroupedValidSplit

    home = write_ham10000(tmp_path / "data", n_samples=160, random_state=0)
    weights = tmp_path / "resnet18.pth"
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), weights)
    fits, splits = [], []
    fit, split = NIRClassifier.fit, GroupedValidSplit.__call__

    def recording_fit(self, X, y=None, **kwargs):
        fits.append((self.get_params(), X))
        return fit(self, X, y, **kwargs)

    def recording_split(self, dataset, y=None, **kwargs):
        train, valid = split(self, dataset, y, **kwargs)
        groups = np.asarray(dataset.groups)
        splits.append((groups[train.indices], groups[valid.indices]))
        return train, valid

    monkeypatch.setattr(NIRClassifier, "fit", recording_fit)
    monkeypatch.setattr(GroupedValidSplit, "__call__", recording_split)
    shrunk = {**_reproduce_nir.NIR_SCALES["paper"], "image_size": 32, "max_epochs": 2,
              "patience": 1, "lambdas": (0.0, 1.0), "cv": 2, "seeds": (0,),
              "n_bootstrap": 10, "predict_batch_size": 64, "num_workers": 0}
    out = tmp_path / "paper"
    _reproduce_nir.reproduce_nir(out, data="ham10000", data_home=home, scale=shrunk,
                             weights=str(weights), verbose=0)
    params, X = fits[0]
    assert params["augment"] == "hflip_crop" and params["image_size"] == 32
    assert isinstance(params["train_split"], GroupedValidSplit)
    paths = X["X"]
    assert all(isinstance(p, str) and p.endswith(".jpg") for p in paths)
    assert len(X["split_groups"]) == len(paths)
    assert len(splits) == len(fits) and all(not set(a) & set(b) for a, b in splits)
    assert "TPR gap by age" in (out / "report.md").read_text()


def test_paper_scale_is_the_pretrained_early_stopped_protocol():
    paper = _reproduce_nir.NIR_SCALES["paper"]
    assert paper["backbone"] == "resnet18" and paper["weights"] == "IMAGENET1K_V1"
    net = _reproduce_nir._classifier({**paper, "max_epochs": 2}, "cpu")
    callbacks = dict(net.callbacks)
    assert callbacks["early_stopping"].load_best
    assert net.train_split is not None and net.input_normalization == "auto"


@pytest.mark.slow
def test_reproduce_nir_compare_adds_the_methods_table_and_resumes(tmp_path, monkeypatch):
    from fairskl import DFRClassifier, JTTClassifier, ThresholdOptimizedClassifier
    from fairskl._base import _RegularizedClassifier

    out = tmp_path / "nir"
    tiny = {**TINY, "max_epochs": 1, "compare_seeds": (0, 1), "compare_grids": {
        "NIR": {"lambda_nir": [1.0, 10.0]}, "JTT": {"identification_epochs": [1],
                                                    "upweight": [5.0, 20.0]}}}
    _reproduce_nir.reproduce_nir(out, scale=tiny, compare=True, verbose=0)
    assert {"compare.png", "compare_summary.csv", "compare_selection.csv"} <= {
        p.name for p in out.iterdir()}
    summary = pd.read_csv(out / "compare_summary.csv")
    methods = ["ERM", "NIR", "CVaR-DRO", "JTT", "spectral decoupling", "group balanced", "LfF",
               "DFR", "GroupDRO", "DFR (groups)", "ThresholdOptimizer"]
    assert list(pd.unique(summary.method)) == methods
    assert set(summary.scenario) == {"default", "shortcut"}
    assert set(summary.comparison) == {"value", "change vs ERM", "change vs ERM at the same rate"}
    assert (summary.n_seeds == 2).all()
    both = pd.read_csv(out / "compare_selection.csv")
    assert set(both.selection) == {"group labels", "no labels"}
    selection = both.query("selection == 'group labels'").set_index("method")
    assert selection.loc["NIR", "n_candidates"] == 2 and selection.loc["ERM", "n_candidates"] == 1
    text = (out / "report.md").read_text()
    for needle in ["Compared with other mitigations", "Change vs ERM (paired)", "CVaR-DRO",
                   "group balanced", "use the age groups in training", "GroupDRO",
                   "selection without group labels", "ThresholdOptimizer",
                   "ERM at each method's own rate"]:
        assert needle in text, needle
    # the ERM row is the plain network's: its change vs itself is not reported, and the
    # change rows are the paired differences of the value rows' per-seed means
    labelled = summary[(summary.selection == "group labels") & (summary.group == "all")
                       & (summary.operating_point == "threshold-free")]
    values = labelled[labelled.comparison == "value"].set_index(["scenario", "method",
                                                                 "attribute", "metric"]).value
    change = labelled[labelled.comparison == "change vs ERM"].set_index(
        ["scenario", "method", "attribute", "metric"]).value
    key = ("default", "NIR", "all", "auc")
    assert change[key] == pytest.approx(values[key] - values[("default", "ERM", "all", "auc")])

    def no_fit(*args, **kwargs):
        raise AssertionError("a network was fitted again")

    monkeypatch.setattr("fairskl.experiments.lambda_study", no_fit)
    monkeypatch.setattr(_RegularizedClassifier, "fit", no_fit)
    for cls in (JTTClassifier, DFRClassifier, ThresholdOptimizedClassifier):  # own fit
        monkeypatch.setattr(cls, "fit", no_fit)
    _reproduce_nir.reproduce_nir(out, scale=tiny, compare=True, resume=True, verbose=0)
    assert_frame_equal(pd.read_csv(out / "compare_summary.csv"), summary)
    with pytest.raises(ValueError, match=r"other \['compare'\]"):
        _reproduce_nir.reproduce_nir(out, scale=tiny, resume=True, verbose=0)


def test_cli_weights_reach_the_study_and_a_missing_file_fails_before_work(tmp_path,
                                                                          monkeypatch):
    seen = {}

    def fake(out, **kwargs):
        seen.update(kwargs)
        return tmp_path / "report.md"

    monkeypatch.setattr("fairskl.experiments.reproduce_nir", fake)
    main(["reproduce", "nir", "--out", str(tmp_path / "x"), "--weights", "w.pth", "--quiet"])
    assert seen["weights"] == "w.pth" and seen["compare"] is False
    main(["reproduce", "nir", "--out", str(tmp_path / "x"), "--compare", "--quiet"])
    assert seen["compare"] is True
    monkeypatch.undo()
    out = tmp_path / "never"
    with pytest.raises(ValueError, match="--weights PATH"):
        _reproduce_nir.reproduce_nir(out, scale={**TINY, "backbone": "resnet18"},
                                 weights=str(tmp_path / "missing.pth"), verbose=0)
    assert not out.exists()


def _model_outputs(n=3000, seed=0):
    rng = np.random.RandomState(seed)
    y = rng.randint(0, 2, n)
    age = np.where(rng.uniform(size=n) < 0.4, "60+", "<60")
    sex = np.where(rng.uniform(size=n) < 0.5, "male", "female")
    proba = np.clip(0.3 * y + 0.1 * (age == "60+") + rng.uniform(0, 0.6, n), 0, 1)
    features = rng.gamma(2.0, size=(n, 6))
    features[:, 2] += 3 * proba * (1 + 0.5 * (age == "60+"))  # positive neuron, 60+ excess
    features[:, 4] += 3 * (1 - proba)
    return y, proba, features, pd.DataFrame({"age": age, "sex": sex})


def test_audit_model_against_independent_computations():
    y, proba, h, A = _model_outputs()
    weights = _heldout.resample_weights(len(y), 50, 0)
    cut = float(np.quantile(proba, 0.7))  # a second operating point, fitted elsewhere
    audit = _heldout.audit_model(y, proba, h, A, weights, {"0.5": 0.5, "matched": cut})
    free = _heldout.FREE
    assert audit[("all", "all", "auc", free)][0] == pytest.approx(roc_auc_score(y, proba))
    for op, t in [("0.5", 0.5), ("matched", cut)]:
        assert audit[("all", "all", "positive_rate", op)][0] == pytest.approx(np.mean(proba >= t))
        assert audit[("all", "all", "tpr", op)][0] == pytest.approx(np.mean(proba[y == 1] >= t))
        assert audit[("all", "all", "fpr", op)][0] == pytest.approx(np.mean(proba[y == 0] >= t))
        for attribute in ("age", "sex"):
            assert audit[(attribute, "all", "tpr_difference", op)][0] == pytest.approx(
                tpr_difference(y, proba >= t, sensitive_features=A[attribute]))
            assert audit[(attribute, "all", "fpr_difference", op)][0] == pytest.approx(
                fpr_difference(y, proba >= t, sensitive_features=A[attribute]))
        old = A.age.to_numpy() == "60+"
        assert audit[("age", "60+", "tpr", op)][0] == pytest.approx(
            np.mean(proba[old & (y == 1)] >= t))
    aucs = [roc_auc_score(y[A.sex == g], proba[A.sex == g]) for g in ("female", "male")]
    assert audit[("sex", "male", "auc", free)][0] == pytest.approx(aucs[1])
    assert audit[("sex", "all", "auc_difference", free)][0] == pytest.approx(
        abs(aucs[0] - aucs[1]))
    # co-activation of the positive neuron, by hand: incidence of 60+ over that of <60 within
    # each true label, averaged over the labels
    p = proba
    m = (p[:, None] * h).sum(0) / p.sum()
    top = m.argmax()
    assert top == 2
    excess = []
    for label in (0, 1):
        hi, lo = old & (y == label), ~old & (y == label)
        excess.append(((p * h[:, top])[hi].sum() / p[hi].sum())
                      / ((p * h[:, top])[lo].sum() / p[lo].sum()) - 1)
    assert audit[("age", "all", "coactivation_positive", free)][0] == pytest.approx(
        100 * np.mean(excess))
    assert audit[("age", "all", "coactivation_positive", free)][0] > 10
    assert audit[("all", "all", "concentration_positive", free)][0] == pytest.approx(
        m.var() / m.mean() ** 2)
    # a replicate is the same metric on the resampled rows
    rows = np.repeat(np.arange(len(y)), weights[3].astype(int))
    assert audit[("all", "all", "auc", free)][1][3] == pytest.approx(
        roc_auc_score(y[rows], proba[rows]))
    assert audit[("sex", "all", "tpr_difference", "matched")][1][3] == pytest.approx(
        tpr_difference(y[rows], proba[rows] >= cut, sensitive_features=A.sex.to_numpy()[rows]))


def test_coactivation_excess_is_not_produced_by_a_prevalence_difference():
    """Within each true label the groups activate the neuron alike; only the prevalence
    differs. Pooled over labels the privileged group would look like it co-activates more."""
    rng = np.random.RandomState(0)
    n = 20000
    old = rng.uniform(size=n) < 0.5
    y = (rng.uniform(size=n) < np.where(old, 0.6, 0.2)).astype(int)
    proba = np.clip(0.5 * y + rng.uniform(0, 0.5, n), 0, 1)
    h = rng.gamma(2.0, size=(n, 4))
    h[:, 1] += 4 * y  # the positive neuron follows the label only
    A = pd.DataFrame({"age": np.where(old, "60+", "<60")})
    audit = _heldout.audit_model(y, proba, h, A, _heldout.resample_weights(n, 20, 0))
    pooled = ((proba * h[:, 1])[old].sum() / proba[old].sum()) / (
        (proba * h[:, 1])[~old].sum() / proba[~old].sum()) - 1
    assert 100 * pooled > 10  # what the pooled statistic would report
    assert abs(audit[("age", "all", "coactivation_positive", _heldout.FREE)][0]) < 3


def test_combine_seeds_adds_test_and_seed_variance_with_t_quantiles():
    rng = np.random.RandomState(0)
    values = np.array([0.10, 0.14, 0.12])
    reps = values[:, None] + rng.normal(0, 0.02, size=(3, 200))
    key = ("age", "all", "tpr_difference", "matched")
    audits = [{key: (v, r)} for v, r in zip(values, reps, strict=True)]
    row = _heldout.combine_seeds(audits).iloc[0]
    test_var, seed_var = reps.mean(axis=0).var(ddof=1), values.var(ddof=1) / 3
    df = (test_var + seed_var) ** 2 / (seed_var ** 2 / 2 + test_var ** 2 / 199)
    expected = stats.t.ppf(0.975, df) * np.sqrt(test_var + seed_var)
    assert row.value == pytest.approx(0.12) and row.df == pytest.approx(df)
    assert 2 < df < 10  # the seeds dominate: far from the normal quantile
    assert row.half_width == pytest.approx(expected, rel=1e-6)
    assert row.ci_low == pytest.approx(0.12 - expected, rel=1e-6)
    assert row.seed_sd == pytest.approx(0.02) and row.n_seeds == 3
    change = _heldout.combine_seeds(_heldout.difference(audits, audits), change=True).iloc[0]
    assert change.value == 0 and change.half_width == 0  # paired: a method against itself
    assert change.p_value == 1


@pytest.mark.parametrize("true_gap", [0.0, 0.10])
def test_seed_averaged_gap_interval_covers_the_truth(true_gap):
    """Coverage on simulated audits with known truth: S=5 seeds whose models differ (seed
    noise on each group's TPR), each scored on one shared test set; the estimand is the gap
    of the seed-averaged model's TPRs on the population (for a true gap of 0, where an
    absolute difference is biased, the interval of the value must still reach 0)."""
    rng = np.random.RandomState(0)
    n_sim, n_seeds, n_pos, n_boot = 300, 5, 300, 200
    covered, includes_estimate = 0, 0
    for _ in range(n_sim):
        seed_shift = rng.normal(0, 0.02, size=(n_seeds, 1))  # a seed moves both groups
        tpr = np.clip(np.array([0.70, 0.70 + true_gap]) + seed_shift, 0, 1)  # (S, 2)
        groups = np.repeat([0, 1], n_pos)
        u = rng.uniform(size=2 * n_pos)  # shared test rows: one latent score per row
        hits = (u[None, :] < tpr[:, groups]).astype(float)  # (S, rows)
        weights = _heldout.resample_weights(2 * n_pos, n_boot, rng.randint(1 << 30))
        audits = []
        for s in range(n_seeds):
            per_group = [(weights[:, groups == g] @ hits[s, groups == g])
                         / weights[:, groups == g].sum(axis=1) for g in (0, 1)]
            point = abs(hits[s, groups == 1].mean() - hits[s, groups == 0].mean())
            audits.append({("g", "all", "tpr_difference", "0.5"): (
                point, np.abs(per_group[1] - per_group[0]))})
        row = _heldout.combine_seeds(audits).iloc[0]
        covered += row.ci_low <= true_gap <= row.ci_high
        includes_estimate += row.ci_low <= row.value <= row.ci_high
    assert includes_estimate == n_sim
    assert covered / n_sim >= 0.93


def test_lambda_is_chosen_on_the_folds_where_every_lambda_is_defined():
    rows = []
    for lam, auc, gap in [(0.0, [0.90, 0.80, 0.85], [0.10, np.nan, 0.10]),
                          (1.0, [0.88, 0.70, 0.86], [0.02, 0.02, 0.04])]:
        for fold in range(3):
            rows += [(lam, 0, fold, "auc", auc[fold]),
                     (lam, 0, fold, "tpr_difference", gap[fold])]
    results = pd.DataFrame(rows, columns=["lambda_nir", "seed", "fold", "metric", "value"])
    with pytest.warns(FairnessWarning, match=r"1 of 3 folds for λ=\[0.0\].*2 folds"):
        means = _selection.common_fold_means(results, [0.0, 1.0], "tpr_difference")
    # fold 1 is left out for both λ: without that rule λ=1 would lose on a fold λ=0 skipped
    assert means.loc[0.0, "auc"] == pytest.approx((0.90 + 0.85) / 2)
    assert means.loc[1.0, "auc"] == pytest.approx((0.88 + 0.86) / 2)
    assert means.loc[1.0, "tpr_difference"] == pytest.approx(0.03)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        full = results.fillna(0.1)
        assert len(_selection.common_fold_means(full, [0.0, 1.0], "tpr_difference")) == 2
