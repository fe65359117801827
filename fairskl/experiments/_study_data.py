"""The data of the two studies: synthetic or real, with the groups and splits each one uses."""

import numpy as np
import pandas as pd

__all__ = ["check_attribute", "nir_data", "vae_data"]

#: NIR study: data set -> attribute -> sensitive column of the loader
ATTRIBUTES = {
    "synthetic": {"age": "age_group", "sex": "sex"},
    "ham10000": {"age": "age_binary", "sex": "sex"},
    "harvard-gf": {"age": "age_binary", "sex": "sex", "race": "race"},
}


def check_attribute(data, attribute):
    """Refuse an ``attribute`` that the NIR study cannot audit on ``data`` (a declared name)."""
    if attribute not in ATTRIBUTES[data]:
        raise ValueError(f"attribute={attribute!r} is not available for data={data!r}; choose "
                         f"one of {sorted(ATTRIBUTES[data])}.")


def nir_data(data, attribute, config, data_home, seed):
    """Training part, held-out set(s), patient ids of the training part and notes.

    Returns ``(X, y, A), tests, groups, notes`` where ``A`` has one column per audited
    attribute (named "age", "sex", ...) and ``tests`` maps a scenario to ``(X, y, A)``. On
    synthetic data the held-out sets are generated apart from the training pool, with other
    seeds: "default" like the training set, "shortcut" with ``bias=0``; on real data the one
    held-out set ("test") is 30% of the patients, or Harvard-GF's own test split. With
    ``config["streaming"]`` a real data set's X are its image paths (read by the estimators
    batch by batch), not the decoded images.
    """
    from fairskl.datasets import load_ham10000, load_harvard_glaucoma, make_skin_lesions
    from fairskl.datasets._base import age_binary
    from fairskl.model_selection import train_val_test_split

    columns = ATTRIBUTES[data]
    if data == "synthetic":
        def draw(n, bias, offset):
            bunch = make_skin_lesions(n, config["image_size"], bias=bias,
                                      artefact_strength=config.get("artefact_strength", 1.0),
                                      random_state=seed + offset)
            A = pd.DataFrame({name: bunch.sensitive[col] for name, col in columns.items()})
            return bunch.images, np.asarray(bunch.target), A

        train = draw(config["n_samples"], config["bias"], 0)
        tests = {"default": draw(config["n_test"], config["bias"], 1),
                 "shortcut": draw(config["n_test"], 0.0, 2)}
        return train, tests, np.arange(len(train[1])), []

    notes = []
    if data == "ham10000":
        bunch = load_ham10000(data_home=data_home, image_size=config["image_size"],
                              return_paths=config.get("streaming", False))
        split = None
    else:
        bunch = load_harvard_glaucoma(data_home=data_home, image_size=config["image_size"],
                                      as_frame=True, return_paths=config.get("streaming", False))
        bunch.sensitive["age_binary"] = age_binary(bunch.sensitive["age"].to_numpy())
        split = (bunch.frame["split"].to_numpy() if "split" in bunch.frame.columns else None)
    X, y, groups = bunch.images, np.asarray(bunch.target), np.asarray(bunch.groups)
    A = pd.DataFrame({name: bunch.sensitive[col] for name, col in columns.items()})
    A = A.reset_index(drop=True)
    known = (A.notna() & (A.astype(str) != "unknown")).all(axis=1).to_numpy()
    if not known.all():
        notes.append(f"{int((~known).sum())} of {len(A)} images with an unknown "
                     f"{' or '.join(A.columns)} are left out of the study.")
        X, y, groups = X[known], y[known], groups[known]
        A = A[known].reset_index(drop=True)
        for name in A.columns:
            if isinstance(A[name].dtype, pd.CategoricalDtype):
                A[name] = A[name].cat.remove_unused_categories()
    if split is not None:
        held_out = split[known] == "test"
        notes.append("Held-out set: Harvard-GF's own test split.")
    else:
        index = np.arange(len(y))
        _, _, test = train_val_test_split(index, groups=groups,
                                          stratify=np.c_[y, A[attribute].astype(str)],
                                          val_size=0.0, test_size=0.3, random_state=seed)
        held_out = np.isin(index, test)
    train = (X[~held_out], y[~held_out], A[~held_out].reset_index(drop=True))
    tests = {"test": (X[held_out], y[held_out], A[held_out].reset_index(drop=True))}
    return train, tests, groups[~held_out], notes


#: the VAE study's group definitions: name -> (FST column, light types, dark types, words)
GROUP_DEFINITIONS = {
    "fst12-56": ("fst", (1, 2), (5, 6), "light = FST 1–2, dark = FST 5–6 (the study's)"),
    "fst123-456": ("fst", (1, 2, 3), (4, 5, 6),
                   "light = FST 1–3, dark = FST 4–6 (the paper's alternative)"),
    "centaur12-56": ("fst_centaur", (1, 2), (5, 6),
                     "light = FST 1–2, dark = FST 5–6 by the second annotation "
                     "(fitzpatrick_centaur)"),
}
#: the label levels of the VAE study's per-image table, finest first
LABEL_LEVELS = ["label", "nine_partition_label", "three_partition_label"]


def vae_data(data, config, data_home, seed):
    """Images, light/dark groups, per-image metadata and notes; other skin types dropped.

    The metadata has one row per kept image: ``fst``, ``fst_centaur`` (the second annotation,
    NaN where there is none), the three label levels and ``source``. With
    ``config["streaming"]`` Fitzpatrick17k's images are its paths, read by the VAE batch by
    batch.
    """
    from fairskl.datasets import load_fitzpatrick17k, make_skin_conditions

    if data == "synthetic":
        bunch = make_skin_conditions(config["n_samples"], config["image_size"],
                                     tone_effect=config.get("tone_effect", 0.0),
                                     random_state=seed)
        # the frame holds the skin types (with the second annotation) and the source
        fst_column, annotations, source = "skin_type", bunch.frame, bunch.frame["source"]
    else:  # "fitzpatrick17k" (reproduce_vae_fairness declares the two)
        bunch = load_fitzpatrick17k(data_home=data_home, image_size=config["image_size"],
                                    target="label", as_frame=True,
                                    resize=config.get("resize", "squash"),
                                    return_paths=config.get("streaming", False))
        fst_column, annotations, source = "fitzpatrick", bunch.sensitive, bunch.source
    meta = pd.DataFrame({"fst": annotations[fst_column].to_numpy(dtype=float),
                         "fst_centaur": annotations["fitzpatrick_centaur"].to_numpy(dtype=float),
                         **{level: bunch.frame[level].to_numpy() for level in LABEL_LEVELS},
                         "source": np.asarray(source, dtype=str)})
    # the group definition is checked by the reproduction (_check_settings) before loading
    column, light, dark, words = GROUP_DEFINITIONS[config["group_definition"]]
    fst = meta[column].to_numpy()
    group = np.select([np.isin(fst, light), np.isin(fst, dark)], ["light", "dark"], default="")
    keep = group != ""
    note = (f"{int(keep.sum())} of {len(keep)} images kept: {words}; light "
            f"{int((group == 'light').sum())}, dark {int((group == 'dark').sum())}; other "
            f"and unknown skin types left out.")
    groups = pd.Categorical(group[keep], categories=["light", "dark"])
    return bunch.images[keep], groups, meta[keep].reset_index(drop=True), [note]
