"""The representation study: per-group scores of models trained on different group mixes.

The protocol of López-Pérez et al. (2025), after Larrazabal et al. (2020), for any estimator:
for each repeat, a test set of ``n_test_per_group`` samples per group is drawn without
replacement; for each training mix, ``n_train`` samples are drawn *with replacement* from the
remaining samples with the mix's group shares; a clone is fitted and scored on each group's test
samples. Each finished (repeat, mix) cell can be checkpointed, so an interrupted run resumes.
"""

import numbers
import os
import warnings
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.base import clone, is_classifier
from sklearn.metrics import get_scorer, recall_score
from sklearn.utils import _safe_indexing
from sklearn.utils._param_validation import HasMethods, Interval, validate_params
from sklearn.utils.parallel import Parallel, delayed
from tqdm.auto import tqdm

from fairskl._constraints import RANDOM_STATE, VERBOSE
from fairskl._io import write_joblib, write_text
from fairskl._parallel import limit_torch_threads
from fairskl.datasets._files import is_path_sequence
from fairskl.experiments._checkpoint import Checkpoints, checkpoint_seed, describe
from fairskl.metrics._group_metrics import per_sample_mse

__all__ = ["representation_study"]

RESULT_COLUMNS = ["repeat", "mix", "group", "train_share", "n_train", "n_distinct", "metric",
                  "value"]
SAMPLE_COLUMNS = ["repeat", "mix", "group", "sample", "metric", "value"]
#: bumped when a cell's saved layout changes, so old checkpoints are refused, not misread
PROTOCOL = 2


def reconstruction_mse(estimator, X, y=None):
    """Per-sample mean squared reconstruction error (``reconstruct`` or a transform round trip),
    on the [0, 1] scale for images (uint8 divided by 255, as in
    :func:`~fairskl.metrics.mse_by_group`). For image paths, the estimator reads them:
    ``-score_samples``, the same error (PerceptualVAE's)."""
    if is_path_sequence(X) and hasattr(estimator, "score_samples"):
        return -np.asarray(estimator.score_samples(X), dtype=float)  # images read from disk
    if hasattr(estimator, "reconstruct"):
        return per_sample_mse(X, estimator.reconstruct(X))
    return per_sample_mse(X, estimator.inverse_transform(estimator.transform(X)))


def latent_std(estimator, X, y=None):
    """Per-sample mean posterior standard deviation (the estimator's ``latent_std``)."""
    return np.asarray(estimator.latent_std(X), dtype=float)


#: posterior draws per image of the sampled uncertainty scores in the study (IWAE, ELBO,
#: decoder variance): 4 keep the study's scoring a small share of its time
STUDY_DRAWS = 4

#: the uncertainty scores of PerceptualVAE.uncertainty, other than latent_std
UNCERTAINTY_SCORES = ("active_latent_std", "kl", "elbo", "iwae", "decoder_var")


def vae_uncertainty_scores(estimator, X, y=None):
    """Every :data:`UNCERTAINTY_SCORES` of a PerceptualVAE per sample, as a dict, from one
    encoding and one set of posterior draws (:func:`fairskl.inspection.vae_uncertainty`)."""
    from fairskl.inspection import vae_uncertainty

    return vae_uncertainty(estimator, X, list(UNCERTAINTY_SCORES), n_samples=STUDY_DRAWS,
                           random_state=0)


def _tpr(estimator, X, y):
    return recall_score(y, estimator.predict(X))


def _fpr(estimator, X, y):
    y_pred = estimator.predict(X)
    negatives = np.asarray(y) == estimator.classes_[0]
    return float(np.mean(y_pred[negatives] != estimator.classes_[0])) if negatives.any() else np.nan


#: Study scorers by name; other strings go to :func:`sklearn.metrics.get_scorer`.
STUDY_SCORERS = dict(reconstruction_mse=reconstruction_mse, latent_std=latent_std,
                     vae_uncertainty=vae_uncertainty_scores, tpr=_tpr, fpr=_fpr)


@validate_params(
    {
        "estimator": [HasMethods(["fit", "get_params"])],
        "X": "no_validation",  # arrays, image paths, Datasets: _n_samples checks them
        "y": ["array-like", None],
        "groups": ["array-like"],
        "train_mixes": ["array-like"],
        "n_train": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_test_per_group": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_repeats": [Interval(numbers.Integral, 1, None, closed="left")],
        "scoring": "no_validation",  # names, a list or a dict of scorers: _check_scoring
        "replace": ["boolean"],
        "exclude": ["array-like", None],
        "random_state": RANDOM_STATE,
        "n_jobs": [numbers.Integral, None],
        "checkpoint_dir": [str, os.PathLike, None],
        "return_samples": ["boolean"],
        "return_estimators": ["boolean"],
        "verbose": VERBOSE,
    },
    prefer_skip_nested_validation=False,  # the estimator's parameters are checked too
)
def representation_study(
    estimator,
    X,
    y=None,
    *,
    groups,
    train_mixes=((1, 0), (0.5, 0.5), (0, 1)),
    n_train=1668,
    n_test_per_group=500,
    n_repeats=10,
    scoring=None,
    replace=True,
    exclude=None,
    random_state=None,
    n_jobs=None,
    checkpoint_dir=None,
    return_samples=False,
    return_estimators=False,
    verbose=1,
):
    """Score clones of an estimator per group after training on different group mixes.

    The protocol of the VAE fairness study (after Larrazabal et al. 2020), for any estimator
    (see :ref:`representation_study`). For each repeat ``r``:

    1. draw a test set of ``n_test_per_group`` samples of each group, without replacement;
    2. for each mix ``(s_1, ..., s_G)`` of ``train_mixes``, draw ``round(s_g * n_train)`` samples
       of group ``g`` *with replacement* (the study's protocol; see ``replace``) from the
       samples outside the test set, fit a :func:`~sklearn.base.clone` and score it on each
       group's test samples.

    As every mix of a repeat is scored on the same test set, mixes can be compared paired by
    repeat. Drawing with replacement repeats images: ``results`` counts the distinct ones.

    The draws of repeat ``r`` and mix ``m`` depend only on ``(random_state, r, m)``, so cells
    can run in any order, in parallel, or be resumed from ``checkpoint_dir``.

    Parameters
    ----------
    estimator : estimator
        Unfitted estimator, e.g. a :class:`~fairskl.PerceptualVAE` or a classifier. If it has a
        ``random_state`` parameter, each cell sets it to a seed derived from ``random_state``.
    X : array-like of shape (n_samples, ...)
        Samples (e.g. N×C×H×W images). Indexed with :func:`sklearn.utils._safe_indexing`.
    y : array-like of shape (n_samples,), default=None
        Labels for supervised estimators; None for unsupervised ones.
    groups : array-like of shape (n_samples,)
        Group of each sample, e.g. ``"light"`` / ``"dark"``. Missing values are an error: subset
        ``X`` to the groups you compare. The group order is the categories' order for a
        categorical, otherwise the sorted unique values.
    train_mixes : sequence of tuples of float, default=((1, 0), (0.5, 0.5), (0, 1))
        Group shares of each training set, in the group order, each summing to 1.
    n_train : int, default=1668
        Size of each training set (the study's).
    n_test_per_group : int, default=500
        Test samples per group (the study's).
    n_repeats : int, default=10
        Repeats of the whole protocol, each with a new test set.
    scoring : str, callable, list or dict, default=None
        What to measure on each group's test samples. A callable ``scorer(estimator, X, y)``
        returns a number, or an array of per-sample values whose mean is the group's value, or
        a dict of those (one metric per key, as scikit-learn's multi-metric callables).
        Strings: ``"reconstruction_mse"`` and ``"latent_std"`` (per-sample),
        ``"vae_uncertainty"`` (every score of :meth:`fairskl.PerceptualVAE.uncertainty` but
        ``latent_std``, one draw set shared, 4 posterior draws), ``"tpr"``,
        ``"fpr"``, or any name of :func:`sklearn.metrics.get_scorer`. None means
        ``["reconstruction_mse", "latent_std"]`` for an estimator with ``latent_std``,
        ``["roc_auc", "tpr", "fpr"]`` for a classifier and ``["reconstruction_mse"]`` otherwise.
    replace : bool, default=True
        Draw the training samples with replacement (the study's protocol). A group whose pool
        (its samples outside the test set) is not larger than its draws is then repeated
        heavily, with a warning that gives the expected number of distinct samples. False
        draws without replacement and raises if a pool is too small.
    exclude : array-like of int or bool, default=None
        Samples never drawn, neither for a test set nor for training (positions in ``X``, or
        a boolean mask): e.g. a shared evaluation set on which to compare the fitted
        estimators (``return_estimators``).
    random_state : int, RandomState instance or None, default=None
        Seed of the draws and of the fits. Must be an int with ``checkpoint_dir``.
    n_jobs : int, default=None
        Cells fitted in parallel with :class:`sklearn.utils.parallel.Parallel` (so any joblib
        backend, e.g. Dask, runs them).
    checkpoint_dir : str or path-like, default=None
        Folder where each finished cell is saved atomically; a rerun with the same arguments
        loads the saved cells and fits only the missing ones. Other arguments than before (or
        other data) raise an error rather than mixing two studies. More repeats than before
        extend the study.
    return_samples : bool, default=False
        Also return the per-sample values of per-sample scorers.
    return_estimators : bool, default=False
        Also return the fitted estimators (saved with the checkpoints, as joblib files, so a
        resumed run returns them too).
    verbose : int, default=1
        0 is silent; 1 shows a progress bar over the cells.

    Returns
    -------
    results : pandas.DataFrame
        One row per (repeat, mix, group, metric) with columns ``repeat``, ``mix`` (a label such
        as ``"50% light / 50% dark"``, ordered categorical), ``group``, ``train_share``,
        ``n_train`` (training draws from the group), ``n_distinct`` (distinct samples among
        them), ``metric`` and ``value``.
    samples : pandas.DataFrame
        Only with ``return_samples``: ``repeat``, ``mix``, ``group``, ``sample`` (position in
        ``X``), ``metric`` and ``value``.
    estimators : dict
        Only with ``return_estimators``: the fitted estimator of each ``(repeat, mix)``, keyed
        by the repeat and the mix label.

    See Also
    --------
    plot_representation_study : Boxplots of the results by group and training mix.

    References
    ----------
    .. [1] M. López-Pérez, S. Hauberg, A. Feragen, "Are generative models fair? A study of racial
       bias in dermatological image generation", arXiv:2501.11752, 2025.
    .. [2] A. J. Larrazabal et al., "Gender imbalance in medical imaging datasets produces biased
       classifiers for computer-aided diagnosis", PNAS 117(23), 2020.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from sklearn.decomposition import PCA
    >>> from fairskl.experiments import representation_study
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(size=(60, 5)), 3 * rng.normal(size=(60, 5))])
    >>> groups = pd.Categorical(np.repeat(["light", "dark"], 60), categories=["light", "dark"])
    >>> results = representation_study(
    ...     PCA(n_components=2), X, groups=groups, train_mixes=[(1, 0), (0, 1)],
    ...     n_train=40, n_test_per_group=20, n_repeats=3, random_state=0, verbose=0)
    >>> results.pivot_table(index="mix", columns="group", values="value", observed=True,
    ...                     sort=False).round(2)
    group                 light  dark
    mix
    100% light / 0% dark   0.61  4.91
    0% light / 100% dark   0.93  4.75
    """
    n_samples = _n_samples(X)
    group_codes, names = _check_groups(groups, n_samples)
    mixes = _check_mixes(train_mixes, names)
    excluded = _check_exclude(exclude, n_samples)
    group_codes = np.where(excluded, -1, group_codes)  # never drawn
    _check_pools(mixes, names, group_codes, n_train, n_test_per_group, replace)
    if y is not None and len(y) != n_samples:
        raise ValueError(f"y has {len(y)} samples but X has {n_samples}.")
    scorers = _check_scoring(scoring, estimator, y)
    seed = checkpoint_seed(random_state, checkpoint_dir)

    labels = [_mix_label(mix, names) for mix in mixes]
    cells = [(r, m) for r in range(n_repeats) for m in range(len(mixes))]
    folder = None if checkpoint_dir is None else Path(checkpoint_dir)
    done = {} if folder is None else _load_checkpoints(folder, dict(
        estimator=describe(estimator), n_samples=n_samples, X=joblib.hash(X),
        groups=joblib.hash(group_codes), group_names=[str(n) for n in names],
        y=None if y is None else joblib.hash(np.asarray(y)), train_mixes=mixes.tolist(),
        n_train=int(n_train), n_test_per_group=int(n_test_per_group), random_state=seed,
        scoring=sorted(scorers), return_samples=bool(return_samples), replace=bool(replace),
        exclude=joblib.hash(np.flatnonzero(excluded)),
        return_estimators=bool(return_estimators), protocol=PROTOCOL))
    todo = [cell for cell in cells if cell not in done]

    jobs = (delayed(_run_cell)(estimator, X, y, group_codes, names, mixes[m], labels[m], r, m,
                               seed, int(n_train), int(n_test_per_group), scorers,
                               return_samples, return_estimators, bool(replace), folder)
            for r, m in todo)
    bar = tqdm(total=len(cells), initial=len(cells) - len(todo), unit="fit",
               desc="representation study (repeat x mix)", disable=not verbose)
    for cell, frames in Parallel(n_jobs=n_jobs, return_as="generator_unordered")(jobs):
        done[cell] = frames
        bar.update()
    bar.close()

    out = [_collect([done[cell][0] for cell in cells], labels, names, RESULT_COLUMNS)]
    if return_samples:
        out.append(_collect([done[cell][1] for cell in cells], labels, names, SAMPLE_COLUMNS))
    if return_estimators:
        out.append({(r, labels[m]): done[(r, m)][2] for r, m in cells})
    return out[0] if len(out) == 1 else tuple(out)


def _run_cell(estimator, X, y, group_codes, names, mix, label, r, m, seed, n_train,
              n_test_per_group, scorers, return_samples, return_estimators, replace, folder):
    limit_torch_threads()
    test_by_group, train = _draw(group_codes, len(names), mix, r, m, seed, n_train,
                                 n_test_per_group, replace)
    fitted = clone(estimator)
    if "random_state" in fitted.get_params(deep=False):
        fitted.set_params(random_state=int(np.random.SeedSequence([seed, r, m]).generate_state(1)[0]
                                           % (2**31 - 1)))
    y_train = () if y is None else (_safe_indexing(y, train),)
    fitted.fit(_safe_indexing(X, train), *y_train)

    rows, sample_rows = [], []
    for g, test in enumerate(test_by_group):
        X_test = _safe_indexing(X, test)
        y_test = None if y is None else _safe_indexing(y, test)
        drawn = train[group_codes[train] == g]
        counts = (float(mix[g]), len(drawn), len(np.unique(drawn)))
        for name, scorer in scorers.items():
            values = scorer(fitted, X_test, y_test)
            if not isinstance(values, dict):
                values = {name: values}
            for metric, value in values.items():
                value = np.asarray(value, dtype=float)
                if value.ndim == 1 and len(value) == len(test):
                    if return_samples:
                        sample_rows.append(pd.DataFrame(dict(
                            repeat=r, mix=label, group=names[g], sample=test, metric=metric,
                            value=value)))
                    value = value.mean()
                elif value.ndim != 0:
                    raise ValueError(
                        f"scorer {name!r} returned shape {value.shape} for {metric!r}; expected "
                        f"a number or one value per test sample ({len(test)})."
                    )
                rows.append((r, label, names[g], *counts, metric, float(value)))
    results = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    samples = (pd.concat(sample_rows, ignore_index=True) if sample_rows
               else pd.DataFrame(columns=SAMPLE_COLUMNS))
    if folder is not None:
        stem = folder / f"cell_r{r:04d}_m{m:02d}"
        if return_estimators:
            write_joblib(stem.with_suffix(".joblib"), fitted)
        if return_samples:
            write_text(stem.with_suffix(".samples.csv"), samples.to_csv(index=False))
        write_text(stem.with_suffix(".csv"), results.to_csv(index=False))  # last: cell done
    return (r, m), (results, samples, fitted if return_estimators else None)


def _draw(group_codes, n_groups, mix, r, m, seed, n_train, n_test_per_group, replace=True):
    """Test indices per group (repeat ``r``) and training indices (repeat ``r``, mix ``m``);
    samples whose group code is -1 are never drawn."""
    rng = np.random.default_rng([seed, r])
    test_by_group, rest = [], []
    for g in range(n_groups):
        members = np.flatnonzero(group_codes == g)
        test = np.sort(rng.choice(members, n_test_per_group, replace=False))
        test_by_group.append(test)
        rest.append(np.setdiff1d(members, test))
    rng = np.random.default_rng([seed, r, 1 + m])
    train = np.concatenate([
        rng.choice(rest[g], size, replace=replace) if size else np.empty(0, dtype=int)
        for g, size in enumerate(_split_sizes(mix, n_train))
    ])
    return test_by_group, rng.permutation(train)


def _split_sizes(mix, n):
    """Integer sizes proportional to ``mix`` that sum to ``n`` (largest remainder)."""
    exact = np.asarray(mix, dtype=float) * n
    sizes = np.floor(exact).astype(int)
    order = np.argsort(-(exact - sizes), kind="stable")
    sizes[order[: n - sizes.sum()]] += 1
    return sizes


def _n_samples(X):
    try:
        return len(X)
    except TypeError:
        raise TypeError(f"X must be array-like with a length, got {type(X).__name__}.") from None


def _check_groups(groups, n_samples):
    series = pd.Series(groups).reset_index(drop=True)
    if len(series) != n_samples:
        raise ValueError(f"groups has {len(series)} values but X has {n_samples} samples.")
    if series.isna().any():
        raise ValueError(
            f"groups has {int(series.isna().sum())} missing values. Subset X (and y) to the "
            f"groups you compare, e.g. mask = groups.isin(['light', 'dark'])."
        )
    if isinstance(series.dtype, pd.CategoricalDtype):
        categorical = series.cat.remove_unused_categories()
    else:
        categorical = series.astype(pd.CategoricalDtype(sorted(series.unique())))
    names = list(categorical.cat.categories)
    if len(names) < 2:
        raise ValueError(f"groups needs at least 2 distinct groups, got {names}.")
    return categorical.cat.codes.to_numpy(), names


def _check_exclude(exclude, n_samples):
    """Boolean mask of the samples never drawn."""
    if exclude is None:
        return np.zeros(n_samples, dtype=bool)
    values = np.asarray(exclude)
    if values.dtype == bool:
        if values.shape != (n_samples,):
            raise ValueError(f"exclude as a boolean mask must have one value per sample "
                             f"({n_samples}), got shape {values.shape}.")
        return values.copy()
    if values.ndim != 1 or not np.issubdtype(values.dtype, np.integer) or (
            len(values) and (values.min() < 0 or values.max() >= n_samples)):
        raise ValueError(f"exclude must be positions in X (ints in [0, {n_samples})) or a "
                         f"boolean mask, got {exclude!r}.")
    return np.isin(np.arange(n_samples), values)


def _check_pools(mixes, names, group_codes, n_train, n_test_per_group, replace):
    """Raise when a group has no sample to train on after its test set; warn when draws with
    replacement repeat a group's pool heavily; raise when draws without it exceed a pool."""
    counts = np.bincount(group_codes[group_codes >= 0], minlength=len(names))
    small = {n: int(c) for n, c in zip(names, counts, strict=True) if c <= n_test_per_group}
    if small:
        raise ValueError(
            f"Each group needs more than n_test_per_group={n_test_per_group} samples (the test "
            f"set, plus at least one to train on), but {small} have fewer. Lower "
            f"n_test_per_group or add samples."
        )
    pools = counts - n_test_per_group
    for mix in mixes:
        for name, size, pool in zip(names, _split_sizes(mix, n_train), pools, strict=True):
            if not replace and size > pool:
                raise ValueError(
                    f"replace=False: mix {_mix_label(mix, names)!r} draws {size} samples of "
                    f"{name!r} from a pool of {pool} (its samples outside the test set). Lower "
                    f"n_train or n_test_per_group, or draw with replacement (replace=True)."
                )
            if replace and size and size >= pool:
                distinct = pool * (1 - (1 - 1 / pool) ** size)
                warnings.warn(
                    f"mix {_mix_label(mix, names)!r} draws {size} training samples of {name!r} "
                    f"with replacement from a pool of only {pool}: about {distinct:.0f} "
                    f"distinct ones (results count them in n_distinct). Pass replace=False "
                    f"with a smaller n_train to train on distinct samples.",
                    UserWarning, stacklevel=3,
                )


def _check_mixes(train_mixes, names):
    try:
        mixes = np.asarray(train_mixes, dtype=float)
    except (TypeError, ValueError):
        mixes = None
    if mixes is None or mixes.ndim != 2 or mixes.shape[1] != len(names) or len(mixes) == 0:
        raise ValueError(
            f"train_mixes must be a list of tuples of {len(names)} shares, one per group in the "
            f"order {names}, got {train_mixes!r}."
        )
    if (mixes < 0).any() or not np.allclose(mixes.sum(axis=1), 1):
        raise ValueError(f"Each mix of train_mixes must be >= 0 and sum to 1, got {train_mixes!r}.")
    return mixes


def _check_scoring(scoring, estimator, y):
    if scoring is None:
        scoring = (["reconstruction_mse", "latent_std"] if hasattr(estimator, "latent_std")
                   else ["roc_auc", "tpr", "fpr"] if is_classifier(estimator)
                   else ["reconstruction_mse"])
    if isinstance(scoring, str) or callable(scoring):
        scoring = [scoring]
    if not isinstance(scoring, dict):
        scoring = {s if isinstance(s, str) else getattr(s, "__name__", f"score_{i}"): s
                   for i, s in enumerate(scoring)}
    scorers = {}
    for name, scorer in scoring.items():
        if isinstance(scorer, str):
            scorer = STUDY_SCORERS.get(scorer) or get_scorer(scorer)
        if not callable(scorer):
            raise ValueError(f"scoring[{name!r}] must be a string or a callable, got {scorer!r}.")
        if y is None and name in ("tpr", "fpr", "roc_auc"):
            raise ValueError(f"scoring {name!r} needs labels: pass y.")
        scorers[name] = scorer
    return scorers


def _mix_label(mix, names):
    return " / ".join(f"{share:.0%} {name}" for share, name in zip(mix, names, strict=True))


def _load_checkpoints(folder, config):
    """Saved cells of an earlier run with the same config; raises if the config differs."""
    Checkpoints(folder, config)
    done = {}
    for path in sorted(folder.glob("cell_r*_m*[0-9].csv")):  # not the .samples.csv
        r, m = (int(part[1:]) for part in path.stem.split("_")[1:])
        samples_path, model_path = path.with_suffix(".samples.csv"), path.with_suffix(".joblib")
        if ((config["return_samples"] and not samples_path.exists())
                or (config["return_estimators"] and not model_path.exists())):
            continue  # refit: its samples or its estimator were not saved
        samples = pd.read_csv(samples_path) if config["return_samples"] else None
        model = joblib.load(model_path) if config["return_estimators"] else None
        done[(r, m)] = (pd.read_csv(path), samples, model)
    return done


def _collect(frames, labels, names, columns):
    """Concatenate cell frames; the same dtypes whether a cell was fitted or loaded from CSV."""
    frames = [f for f in frames if f is not None and len(f)]
    if not frames:
        return pd.DataFrame(columns=columns)
    out = pd.concat(frames, ignore_index=True)
    out["mix"] = pd.Categorical(out["mix"], categories=labels, ordered=True)
    out["group"] = out["group"].astype(str).map({str(name): name for name in names})
    return out.astype({"metric": str, "value": float})
