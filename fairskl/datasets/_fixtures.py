"""Tiny files in the exact layouts of the real data sets, for tests, doctests and benchmarks.

The metadata columns, file names and folders follow the owners' downloads; the values and the
pixels are random. Nothing here is real data.
"""

import io
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from sklearn.utils import check_random_state

__all__ = ["write_fitzpatrick17k", "write_ham10000", "write_harvard_gf", "write_images",
           "write_pad_ufes20"]


def _picture(rng, shape):
    """A smooth colour gradient with a dark blob and some noise, (h, w, 3) uint8."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    base = rng.uniform(0.3, 0.9, size=3)
    img = base + 0.2 * (xx[..., None] - 0.5) * rng.uniform(-1, 1, size=3)
    cy, cx, r = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7), rng.uniform(0.1, 0.3)
    blob = np.exp(-(((yy - cy) ** 2 + (xx - cx) ** 2) / r**2))[..., None]
    img = img * (1 - 0.6 * blob) + rng.normal(0, 0.02, size=(h, w, 3))
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def write_images(folder, names, *, shape=(30, 40), n_distinct=None, random_state=None):
    """Write one small image per name into ``folder`` (format from the suffix); return paths.

    With ``n_distinct``, only that many pictures are drawn and encoded, and their bytes are
    reused cyclically (fast for benchmarks; decoding costs the same).
    """
    rng = check_random_state(random_state)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths, encoded = [], {}
    for i, name in enumerate(names):
        path = folder / name
        key = (path.suffix.lower(), i % n_distinct if n_distinct else i)
        if key not in encoded:
            buf = io.BytesIO()
            fmt = Image.registered_extensions().get(key[0], "PNG")
            Image.fromarray(_picture(rng, shape)).save(buf, format=fmt, quality=90)
            encoded[key] = buf.getvalue()
        path.write_bytes(encoded[key])
        if not n_distinct:
            del encoded[key]
        paths.append(path)
    return paths


def _hex(rng, n):
    return ["".join(rng.choice(list("0123456789abcdef"), 32)) for _ in range(n)]


def write_fitzpatrick17k(data_home, n_samples=10, *, n_missing=0, shape=(30, 40),
                         n_distinct=None, random_state=None):
    """``fitzpatrick17k/fitzpatrick17k.csv`` with ``n_samples + n_missing`` rows and images.

    The last ``n_missing`` rows have no image file. As in the real CSV, ``fitzpatrick_centaur``
    (the second annotation) differs from ``fitzpatrick_scale`` by one type on about a third
    of the rows, and the urls alternate between the hosts of the two atlases, with the
    ``.invalid`` top-level domain (nothing can be downloaded from them). Returns ``data_home``.
    """
    rng = check_random_state(random_state)
    home = Path(data_home) / "fitzpatrick17k"
    n = n_samples + n_missing
    labels = np.array([("melanoma", "malignant melanoma", "malignant"),
                       ("psoriasis", "inflammatory", "non-neoplastic"),
                       ("seborrheic keratosis", "benign epidermal", "benign")])
    pick = labels[rng.randint(len(labels), size=n)]
    hashes = _hex(rng, n)
    fst = rng.choice([-1, 1, 2, 3, 4, 5, 6], size=n)
    # derived from the hashes, not drawn: the rows and pictures of a seed stay as they were
    shift = np.array([int(h[0], 16) % 3 - 1 for h in hashes])
    centaur = np.where(fst == -1, -1, np.clip(fst + shift, 1, 6))
    hosts = ["www.dermaamin.invalid", "atlasdermatologico.invalid"]
    urls = [f"https://{hosts[i % 2]}/{h}.jpg" for i, h in enumerate(hashes)]
    csv = pd.DataFrame({
        "md5hash": hashes, "fitzpatrick_scale": fst, "fitzpatrick_centaur": centaur,
        "label": pick[:, 0], "nine_partition_label": pick[:, 1],
        "three_partition_label": pick[:, 2], "qc": [""] * n, "url": urls,
        "url_alphanum": ["".join(c for c in u if c.isalnum()) + ".jpg" for u in urls],
    })
    home.mkdir(parents=True, exist_ok=True)
    csv.to_csv(home / "fitzpatrick17k.csv", index=False)
    write_images(home / "images", [f"{h}.jpg" for h in hashes[:n_samples]], shape=shape,
                 n_distinct=n_distinct, random_state=rng)
    return Path(data_home)


def write_ham10000(data_home, n_samples=10, *, n_missing=0, shape=(30, 40), random_state=None):
    """``ham10000/HAM10000_metadata.csv`` and images split over the two ``part`` folders."""
    rng = check_random_state(random_state)
    home = Path(data_home) / "ham10000"
    n = n_samples + n_missing
    lesion = np.sort(rng.randint(0, max(1, (2 * n) // 3), size=n))
    age = rng.choice(np.arange(0, 90, 5), size=n).astype(float)
    age[rng.uniform(size=n) < 0.1] = np.nan
    csv = pd.DataFrame({
        "lesion_id": [f"HAM_{i:07d}" for i in lesion],
        "image_id": [f"ISIC_{i:07d}" for i in rng.permutation(n) + 24306],
        "dx": rng.choice(["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"], size=n),
        "dx_type": "histo", "age": age,
        "sex": rng.choice(["male", "female", "unknown"], size=n, p=[0.45, 0.45, 0.1]),
        "localization": "back", "dataset": "vidir_modern",
    })
    home.mkdir(parents=True, exist_ok=True)
    csv.to_csv(home / "HAM10000_metadata.csv", index=False)
    names = [f"{i}.jpg" for i in csv["image_id"][:n_samples]]
    half = len(names) // 2
    write_images(home / "HAM10000_images_part_1", names[:half], shape=shape, random_state=rng)
    write_images(home / "HAM10000_images_part_2", names[half:], shape=shape, random_state=rng)
    return Path(data_home)


def write_pad_ufes20(data_home, n_samples=10, *, n_missing=0, shape=(30, 40),
                     random_state=None):
    """``pad-ufes-20/metadata.csv`` and PNG images under ``images/imgs_part_{1,2}/``."""
    rng = check_random_state(random_state)
    home = Path(data_home) / "pad-ufes-20"
    n = n_samples + n_missing
    patient = rng.randint(0, max(1, n // 2), size=n)
    lesion = rng.permutation(n) + 100
    known = rng.uniform(size=n) < 0.65
    csv = pd.DataFrame({
        "patient_id": [f"PAT_{p}" for p in patient], "lesion_id": lesion,
        "age": rng.randint(6, 95, size=n),
        "gender": np.where(known, rng.choice(["FEMALE", "MALE"], size=n), None),
        "fitspatrick": np.where(known, rng.randint(1, 7, size=n), np.nan),
        "diagnostic": rng.choice(["ACK", "BCC", "MEL", "NEV", "SCC", "SEK"], size=n),
        "img_id": [f"PAT_{p}_{le}_{i}.png"
                   for i, (p, le) in enumerate(zip(patient, lesion, strict=True))],
        "biopsed": rng.uniform(size=n) < 0.5,
    })
    home.mkdir(parents=True, exist_ok=True)
    csv.to_csv(home / "metadata.csv", index=False)
    names = list(csv["img_id"][:n_samples])
    half = len(names) // 2
    write_images(home / "images" / "imgs_part_1", names[:half], shape=shape, random_state=rng)
    write_images(home / "images" / "imgs_part_2", names[half:], shape=shape, random_state=rng)
    return Path(data_home)


def write_harvard_gf(data_home, n_samples=8, *, size=24, race_as="int", random_state=None):
    """``harvard-gf/{train,val,test}/data_XXXX.npz`` files with the owners' keys.

    Rows cycle over train, train, val, test. ``race_as="str"`` stores race by name.
    """
    rng = check_random_state(random_state)
    home = Path(data_home) / "harvard-gf"
    races = ["Asian", "Black", "White"]
    for i in range(n_samples):
        split = ("train", "train", "val", "test")[i % 4]
        (home / split).mkdir(parents=True, exist_ok=True)
        race = int(rng.randint(3))
        yy, xx = np.mgrid[0:size, 0:size] / size
        rnflt = (60 + 200 * np.exp(-((yy - 0.5) ** 2 + (xx - 0.3) ** 2) / 0.05)
                 + rng.normal(0, 5, (size, size))).astype(np.float32)
        np.savez(home / split / f"data_{i + 1:04d}.npz", rnflt=rnflt,
                 glaucoma=np.array(rng.randint(2)), age=np.array(rng.uniform(20, 90)),
                 male=np.array(rng.randint(2)),
                 race=np.array(races[race] if race_as == "str" else race),
                 ethnicity=np.array(rng.choice([-1, 0, 1])), language=np.array(rng.randint(3)),
                 maritalstatus=np.array(rng.choice([-1, 0, 1, 2, 3, 4])),
                 md=np.array(rng.normal(-2, 3)), tds=rng.normal(0, 2, 52))
    return Path(data_home)
