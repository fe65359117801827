"""Loaders of the real data sets: real metadata, exact layouts, the image cache and bad input."""

import io
import json
import os
import urllib.error
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fairskl.datasets import (
    _cache,
    _download,
    get_data_home,
    load_fitzpatrick17k,
    load_ham10000,
    load_harvard_glaucoma,
    load_pad_ufes20,
)
from fairskl.datasets._fixtures import (
    write_fitzpatrick17k,
    write_ham10000,
    write_harvard_gf,
    write_images,
    write_pad_ufes20,
)
from fairskl.exceptions import DataWarning

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FITZ_CSV = SHARED / "fitzpatrick17k" / "fitzpatrick17k.csv"
HAM_CSV = SHARED / "ham10000" / "HAM10000_metadata.csv"
PAD_CSV = SHARED / "pad-ufes-20" / "metadata.csv"


def _need(path):
    return pytest.mark.skipif(not path.is_file(),
                              reason=f"real metadata {path} absent (see ../shared/data/README.md)")


def _link(real, dest):
    """Put the real CSV in a temporary layout without copying it."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(real, dest)


@pytest.fixture
def count_decodes(monkeypatch):
    """Count calls of the image decoder (a cache hit decodes nothing)."""
    calls = []
    original = _cache.decode_image

    def counting(path, *args, **kwargs):
        calls.append(Path(path).name)
        return original(path, *args, **kwargs)

    monkeypatch.setattr(_cache, "decode_image", counting)
    return calls


# ------------------------------------------------------------------------------------------
# Real metadata from ../shared/data, with tiny images for a subset of its rows
# ------------------------------------------------------------------------------------------
@_need(FITZ_CSV)
def test_fitzpatrick17k_real_metadata(tmp_path):
    csv = pd.read_csv(FITZ_CSV)
    # a few rows of every Fitzpatrick value, -1 (unknown) included
    rows = csv.groupby("fitzpatrick_scale").sample(6, random_state=0)
    _link(FITZ_CSV, tmp_path / "fitzpatrick17k" / "fitzpatrick17k.csv")
    write_images(tmp_path / "fitzpatrick17k" / "images", rows["md5hash"] + ".jpg", random_state=0)

    with pytest.warns(DataWarning, match=f"{len(csv) - len(rows)} of {len(csv)} metadata rows"):
        data = load_fitzpatrick17k(data_home=tmp_path, image_size=8, target="label")
    assert data.images.shape == (len(rows), 3, 8, 8) and data.images.dtype == np.float32
    assert "Fitzpatrick17k" in data.DESCR
    got = pd.DataFrame({"md5hash": data.groups, "fst": data.sensitive["fitzpatrick"],
                        "group": data.sensitive["skin_group"].astype(str),
                        "label": np.array(data.target_names)[data.target]})
    expected = rows.set_index("md5hash").loc[got["md5hash"]]
    fst = expected["fitzpatrick_scale"].to_numpy()
    np.testing.assert_array_equal(got["fst"], np.where(fst == -1, np.nan, fst))
    by_hand = {1: "light", 2: "light", 3: "medium", 4: "medium", 5: "dark", 6: "dark",
               -1: "unknown"}
    assert list(got["group"]) == [by_hand[v] for v in fst]
    assert list(got["label"]) == list(expected["label"])
    assert data.target_names == sorted(csv["label"].unique()) and len(data.target_names) == 114
    centaur = expected["fitzpatrick_centaur"].to_numpy()
    np.testing.assert_array_equal(data.sensitive["fitzpatrick_centaur"],
                                  np.where(centaur == -1, np.nan, centaur))
    by_host = {"www.dermaamin.com": "dermaamin", "atlasdermatologico.com.br": "atlasdermatologico"}
    hosts = expected["url"].str.split("/").str[2]
    assert list(data.source) == [by_host.get(h, "unknown") for h in hosts]

    with pytest.warns(DataWarning):
        framed = load_fitzpatrick17k(data_home=tmp_path, image_size=8, as_frame=True)
    # the categories are the sources of the whole CSV (41 rows have no url)
    assert list(framed.frame["source"].cat.categories) == [
        "atlasdermatologico", "dermaamin", "unknown"]
    assert list(framed.frame["source"].astype(str)) == list(data.source)

    with pytest.warns(DataWarning):
        three = load_fitzpatrick17k(data_home=tmp_path, image_size=8)  # default level
    assert three.target_names == ["benign", "malignant", "non-neoplastic"]
    assert list(np.array(three.target_names)[three.target]) == list(
        expected["three_partition_label"])
    np.testing.assert_array_equal(three.images, data.images)  # same size: from the cache


@_need(HAM_CSV)
def test_ham10000_real_metadata(tmp_path):
    csv = pd.read_csv(HAM_CSV)
    rng = np.random.RandomState(0)
    multi = csv[csv.duplicated("lesion_id", keep=False)]
    lesions = rng.choice(multi["lesion_id"].unique(), 5, replace=False)
    rows = pd.concat([
        csv[csv["lesion_id"].isin(lesions)],  # several images of one lesion
        csv[csv["sex"] == "unknown"].head(4), csv[csv["age"].isna()].head(4),
        csv[csv["age"] == 60].head(3), csv[csv["dx"] == "bcc"].head(3),
        csv.sample(20, random_state=0),
    ]).drop_duplicates("image_id")
    _link(HAM_CSV, tmp_path / "ham10000" / "HAM10000_metadata.csv")
    names = list(rows["image_id"] + ".jpg")
    write_images(tmp_path / "ham10000" / "HAM10000_images_part_1", names[::2], random_state=0)
    write_images(tmp_path / "ham10000" / "HAM10000_images_part_2", names[1::2], random_state=1)

    with pytest.warns(DataWarning, match=f"{len(csv) - len(rows)} of {len(csv)} metadata rows"):
        data = load_ham10000(data_home=tmp_path, image_size=8, as_frame=True)
    assert len(data.target) == len(rows) == data.images.shape[0]
    expected = rows.set_index("image_id").loc[data.frame["image_id"]]
    assert list(data.groups) == list(expected["lesion_id"])
    np.testing.assert_array_equal(data.target, expected["dx"].isin(["mel", "akiec"]).astype(int))
    s = data.sensitive
    for sex, age, sex_got, age_got, group, binary in zip(
            expected["sex"], expected["age"], s["sex"], s["age"], s["age_group"],
            s["age_binary"], strict=True):
        assert sex_got == sex  # "unknown" kept as such
        if np.isnan(age):
            assert np.isnan(age_got) and group == "unknown" and binary == "unknown"
        else:
            lo = min(int(age) // 20 * 20, 80)
            assert age_got == age
            assert group == (f"{lo}-{lo + 19}" if lo < 80 else "80+")
            assert binary == ("60+" if age >= 60 else "<60")
    assert (s["sex"] == "unknown").sum() == (expected["sex"] == "unknown").sum() >= 4
    assert s["age"].isna().sum() == expected["age"].isna().sum() >= 4
    assert (s.loc[s["age"] == 60, "age_binary"] == "60+").all()

    with pytest.warns(DataWarning):
        wide = load_ham10000(data_home=tmp_path, image_size=8,
                             malignant=("mel", "akiec", "bcc"))
    np.testing.assert_array_equal(
        wide.target, expected["dx"].isin(["mel", "akiec", "bcc"]).astype(int))
    assert wide.target.sum() > data.target.sum()


@_need(PAD_CSV)
def test_pad_ufes20_real_metadata(tmp_path):
    csv = pd.read_csv(PAD_CSV)
    rows = pd.concat([csv[csv["gender"].isna()].head(8), csv.sample(30, random_state=0)])
    rows = rows.drop_duplicates("img_id")
    _link(PAD_CSV, tmp_path / "pad-ufes-20" / "metadata.csv")
    for sub, part in rows.groupby(rows["image_path"].str.split("/").str[-2]):
        # the real sub-folders, e.g. images/imgs_part_3/PAT_1516_1765_530.png
        write_images(tmp_path / "pad-ufes-20" / "images" / sub, part["img_id"], random_state=0)

    with pytest.warns(DataWarning, match=f"{len(csv) - len(rows)} of {len(csv)} metadata rows"):
        data = load_pad_ufes20(data_home=tmp_path, image_size=8, as_frame=True)
    expected = rows.set_index("img_id").loc[data.frame["img_id"]]
    s = data.sensitive
    assert list(s["gender"]) == [g.lower() if isinstance(g, str) else "unknown"
                                 for g in expected["gender"]]
    np.testing.assert_array_equal(s["fitzpatrick"], expected["fitspatrick"])
    np.testing.assert_array_equal(s["age"], expected["age"])
    assert list(data.groups) == list(expected["patient_id"])
    np.testing.assert_array_equal(data.target,
                                  expected["diagnostic"].isin(["BCC", "MEL", "SCC"]).astype(int))
    assert (s["gender"] == "unknown").sum() >= 8


# ------------------------------------------------------------------------------------------
# Generated files in the exact layouts
# ------------------------------------------------------------------------------------------
def test_images_are_resized_rgb_in_unit_range(tmp_path):
    write_fitzpatrick17k(tmp_path, 2, random_state=0)
    path = next((tmp_path / "fitzpatrick17k" / "images").iterdir())
    Image.new("RGB", (50, 30), (255, 0, 128)).save(path, quality=95)
    data = load_fitzpatrick17k(data_home=tmp_path, image_size=12, return_paths=True)
    row = list(data.images).index(str(path))
    images = load_fitzpatrick17k(data_home=tmp_path, image_size=12).images
    assert images.shape == (2, 3, 12, 12) and images.dtype == np.float32
    np.testing.assert_allclose(images[row].mean(axis=(1, 2)), [1, 0, 128 / 255], atol=0.03)
    assert images.min() >= 0 and images.max() <= 1


def _quarters(width=64, height=32):
    """A landscape picture: red outer quarters, a green centre half (the crop keeps only it)."""
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[:, :, 0] = 255
    pixels[:, width // 4: 3 * width // 4] = (0, 255, 0)
    return Image.fromarray(pixels)


def test_crop_keeps_the_aspect_ratio_squash_does_not(tmp_path):
    write_fitzpatrick17k(tmp_path, 2, random_state=0)
    path = Path(load_fitzpatrick17k(data_home=tmp_path, return_paths=True).images[0])
    _quarters(256, 128).save(path, quality=95)  # a JPEG decoded at a DCT scale (draft)
    crop = load_fitzpatrick17k(data_home=tmp_path, image_size=16, resize="crop").images[0]
    squash = load_fitzpatrick17k(data_home=tmp_path, image_size=16).images[0]
    assert crop.shape == squash.shape == (3, 16, 16)
    # crop: the short side to 16, the long to 32, the centre 16 columns: all green
    np.testing.assert_allclose(crop.mean(axis=(1, 2)), [0, 1, 0], atol=0.03)
    # squash: the whole picture, red quarters included (aspect ratio not kept)
    red = squash[0].mean(axis=0)
    assert (red[:3] > 0.9).all() and (red[-3:] > 0.9).all() and (red[6:10] < 0.1).all()
    np.testing.assert_allclose(squash.mean(axis=(1, 2)), [0.5, 0.5, 0], atol=0.05)


@pytest.mark.parametrize("size", [(64, 32), (52, 32), (37, 50), (51, 50), (40, 40), (9, 30)])
def test_crop_is_torchvision_resize_then_center_crop(tmp_path, size):
    transforms = pytest.importorskip("torchvision.transforms")
    write_pad_ufes20(tmp_path, 2, random_state=0)  # PNG files: no DCT scaling
    path = Path(load_pad_ufes20(data_home=tmp_path, return_paths=True).images[0])
    noise = np.random.RandomState(0).randint(0, 256, (size[1], size[0], 3), np.uint8)
    Image.fromarray(noise).save(path)
    data = load_pad_ufes20(data_home=tmp_path, image_size=12, resize="crop")
    row = [str(p) for p in load_pad_ufes20(data_home=tmp_path, return_paths=True).images]
    got = np.round(data.images[row.index(str(path))] * 255).astype(np.uint8).transpose(1, 2, 0)
    reference = transforms.Compose([transforms.Resize(12), transforms.CenterCrop(12)])
    with Image.open(path) as im:
        expected = np.asarray(reference(im.convert("RGB")))
    np.testing.assert_array_equal(got, expected)


def test_crop_and_squash_are_cached_apart(tmp_path, count_decodes):
    write_ham10000(tmp_path, 4, random_state=0, shape=(30, 60))
    squash = load_ham10000(data_home=tmp_path, image_size=8)
    crop = load_ham10000(data_home=tmp_path, image_size=8, resize="crop")
    assert len(count_decodes) == 8  # the crop cache is not the squash cache
    assert not np.allclose(squash.images, crop.images)
    cache = tmp_path / "fairskl_cache"
    manifest = json.loads((cache / "ham10000_8px_crop.json").read_text())
    assert manifest["meta"] == {"dataset": "HAM10000", "image_size": 8, "mode": "RGB",
                                "resize": "crop"}
    # the squash cache keeps the key and meta it had before resize existed
    manifest = json.loads((cache / "ham10000_8px.json").read_text())
    assert manifest["meta"] == {"dataset": "HAM10000", "image_size": 8, "mode": "RGB"}
    count_decodes.clear()
    np.testing.assert_array_equal(
        load_ham10000(data_home=tmp_path, image_size=8, resize="crop").images, crop.images)
    np.testing.assert_array_equal(load_ham10000(data_home=tmp_path, image_size=8).images,
                                  squash.images)
    assert count_decodes == []  # both from their own cache


def test_fitzpatrick17k_centaur_and_source(tmp_path):
    write_fitzpatrick17k(tmp_path, 8, random_state=0)
    csv_path = tmp_path / "fitzpatrick17k" / "fitzpatrick17k.csv"
    csv = pd.read_csv(csv_path)
    csv.loc[1, "url"] = np.nan
    csv.loc[2, "url"] = "http://www.dermaamin.com/site/images/clinical-pic/a/acne/acne1.jpg"
    csv.to_csv(csv_path, index=False)
    data = load_fitzpatrick17k(data_home=tmp_path, image_size=8, as_frame=True)
    expected = csv.set_index("md5hash").loc[data.groups]
    centaur = expected["fitzpatrick_centaur"].to_numpy(float)
    assert (centaur != expected["fitzpatrick_scale"]).any()  # the fixture has two annotations
    np.testing.assert_array_equal(data.sensitive["fitzpatrick_centaur"],
                                  np.where(centaur == -1, np.nan, centaur))
    by_hand = ["unknown" if not isinstance(u, str) else
               "atlasdermatologico" if "//atlasdermatologico." in u else "dermaamin"
               for u in expected["url"]]
    assert list(data.source) == by_hand and data.source.dtype == object
    assert {"unknown", "dermaamin", "atlasdermatologico"} == set(by_hand)
    assert isinstance(data.frame["source"].dtype, pd.CategoricalDtype)
    assert list(data.frame["source"].astype(str)) == by_hand
    plain = load_fitzpatrick17k(data_home=tmp_path, image_size=8)
    assert plain.frame is None and list(plain.source) == by_hand

    csv.drop(columns="fitzpatrick_centaur").to_csv(csv_path, index=False)  # an older CSV
    data = load_fitzpatrick17k(data_home=tmp_path, image_size=8)
    assert data.sensitive["fitzpatrick_centaur"].isna().all()
    assert data.sensitive["fitzpatrick_centaur"].dtype == np.float64


def test_missing_images_counted_and_return_paths(tmp_path, count_decodes):
    write_ham10000(tmp_path, 7, n_missing=3, random_state=0)
    with pytest.warns(DataWarning, match="3 of 10 metadata rows left out: no image file"):
        data = load_ham10000(data_home=tmp_path, return_paths=True, as_frame=True)
    assert count_decodes == []  # paths only: nothing decoded
    assert len(data.images) == 7 and all(Path(p).is_file() for p in data.images)
    assert [Path(p).stem for p in data.images] == list(data.frame["image_id"])
    assert list(data.frame["path"]) == list(data.images)
    assert isinstance(data.target, pd.Series) and data.target.name == "malignant"
    assert "HAM10000" in data.DESCR


def test_cache_hit_decodes_nothing(tmp_path, count_decodes):
    write_pad_ufes20(tmp_path, 9, random_state=0)
    first = load_pad_ufes20(data_home=tmp_path, image_size=16)
    assert len(count_decodes) == 9
    second = load_pad_ufes20(data_home=tmp_path, image_size=16)
    assert len(count_decodes) == 9  # all from the cache
    np.testing.assert_array_equal(first.images, second.images)
    load_pad_ufes20(data_home=tmp_path, image_size=8)  # another size: another cache
    assert len(count_decodes) == 18
    uncached = load_pad_ufes20(data_home=tmp_path, image_size=16, cache=False)
    assert len(count_decodes) == 27
    np.testing.assert_array_equal(uncached.images, first.images)


def test_cache_rebuilt_when_a_source_changes(tmp_path, count_decodes):
    write_fitzpatrick17k(tmp_path, 6, random_state=0)
    first = load_fitzpatrick17k(data_home=tmp_path, image_size=8)
    changed = Path(load_fitzpatrick17k(data_home=tmp_path, return_paths=True).images[2])
    Image.new("RGB", (30, 40), (0, 0, 0)).save(changed)
    st = changed.stat()
    os.utime(changed, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))
    count_decodes.clear()
    second = load_fitzpatrick17k(data_home=tmp_path, image_size=8)
    assert count_decodes == [changed.name]  # only the changed file is decoded again
    assert second.images[2].max() < 0.05 and first.images[2].max() > 0.2
    np.testing.assert_array_equal(np.delete(second.images, 2, 0), np.delete(first.images, 2, 0))
    count_decodes.clear()
    load_fitzpatrick17k(data_home=tmp_path, image_size=8)
    assert count_decodes == []
    cache_files = os.listdir(tmp_path / "fairskl_cache")
    assert len([f for f in cache_files if f.endswith(".npy")]) == 1  # the old array is gone

    changed.unlink()  # a source disappears: its row is reported, nothing is decoded
    with pytest.warns(DataWarning, match="1 of 6 metadata rows left out: no image file"):
        third = load_fitzpatrick17k(data_home=tmp_path, image_size=8)
    assert count_decodes == []
    np.testing.assert_array_equal(third.images, np.delete(second.images, 2, 0))
    manifest = json.loads((tmp_path / "fairskl_cache" / "fitzpatrick17k_8px.json").read_text())
    assert len(manifest["entries"]) == 5 and manifest["shape"][0] == 5


def test_interrupted_cache_write_is_never_used(tmp_path, count_decodes, monkeypatch):
    write_ham10000(tmp_path, 6, random_state=0)
    real_save = np.save

    def half_save(f, arr, **kwargs):
        buf = io.BytesIO()
        real_save(buf, arr, **kwargs)
        f.write(buf.getvalue()[: len(buf.getvalue()) // 2])
        raise KeyboardInterrupt  # the user pressed Ctrl-C in the middle of the write

    monkeypatch.setattr(_cache.np, "save", half_save)
    with pytest.raises(KeyboardInterrupt):
        load_ham10000(data_home=tmp_path, image_size=8)
    monkeypatch.setattr(_cache.np, "save", real_save)
    assert [f for f in os.listdir(tmp_path / "fairskl_cache") if not f.startswith(".")] == []
    count_decodes.clear()
    good = load_ham10000(data_home=tmp_path, image_size=8, cache=False)
    assert len(count_decodes) == 6

    # a complete cache, then an interrupt while its replacement's manifest is written
    load_ham10000(data_home=tmp_path, image_size=8)
    write_images(tmp_path / "ham10000" / "HAM10000_images_part_1",
                 [Path(load_ham10000(data_home=tmp_path, return_paths=True).images[0]).name],
                 shape=(20, 20), random_state=5)
    real_dump = _cache.json.dump
    monkeypatch.setattr(_cache.json, "dump", lambda *a, **k: (_ for _ in ()).throw(
        KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        load_ham10000(data_home=tmp_path, image_size=8)
    monkeypatch.setattr(_cache.json, "dump", real_dump)
    npys = [f for f in os.listdir(tmp_path / "fairskl_cache") if f.endswith(".npy")]
    assert len(npys) == 1  # the new array was removed, the old cache is intact
    count_decodes.clear()
    load_ham10000(data_home=tmp_path, image_size=8, cache=False)
    assert len(count_decodes) == 6
    count_decodes.clear()
    load_ham10000(data_home=tmp_path, image_size=8)
    assert len(count_decodes) == 1  # the old cache served the 5 unchanged images
    npys = [f for f in os.listdir(tmp_path / "fairskl_cache") if f.endswith(".npy")]

    # a manifest whose array is damaged (e.g. a disk error) is ignored, then rebuilt
    array = tmp_path / "fairskl_cache" / npys[0]
    array.write_bytes(array.read_bytes()[:100])
    count_decodes.clear()
    again = load_ham10000(data_home=tmp_path, image_size=8)
    assert len(count_decodes) == 6
    np.testing.assert_array_equal(np.delete(again.images, 0, 0), np.delete(good.images, 0, 0))


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_images_skipped_counted_or_raised(tmp_path, damage):
    write_fitzpatrick17k(tmp_path, 5, random_state=0, shape=(64, 64))
    bad = Path(load_fitzpatrick17k(data_home=tmp_path, return_paths=True).images[1])
    content = bad.read_bytes()
    bad.write_bytes(b"not an image" if damage == "garbage" else content[: len(content) // 2])
    with pytest.warns(DataWarning, match=rf"1 of 5 metadata rows left out: image could not be "
                                         rf"decoded \(e\.g\. {bad.name}"):
        data = load_fitzpatrick17k(data_home=tmp_path, image_size=8, as_frame=True)
    assert data.images.shape[0] == 4 == len(data.frame) == len(data.sensitive)
    assert bad.stem not in set(data.groups)
    with pytest.warns(DataWarning, match="1 of 5"):  # also from the cache: still reported
        load_fitzpatrick17k(data_home=tmp_path, image_size=8)
    with pytest.raises(OSError, match=bad.name):
        load_fitzpatrick17k(data_home=tmp_path, image_size=8, on_error="raise")


@pytest.mark.parametrize("loader, folder, hint", [
    (load_fitzpatrick17k, "fitzpatrick17k", "github.com/mattgroh/fitzpatrick17k"),
    (load_ham10000, "ham10000", "doi.org/10.7910/DVN/DBW86T"),
    (load_pad_ufes20, "pad-ufes-20", "data.mendeley.com"),
    (load_harvard_glaucoma, "harvard-gf", "ophai.hms.harvard.edu"),
])
def test_missing_layout_names_layout_and_source(tmp_path, loader, folder, hint):
    with pytest.raises(FileNotFoundError) as exc:
        loader(data_home=tmp_path / "nowhere")
    msg = str(exc.value)
    assert f"<data_home>/{folder}/" in msg and hint in msg and "nowhere" in msg


def test_missing_image_folder_and_renamed_columns(tmp_path):
    write_ham10000(tmp_path, 4, random_state=0)
    home = tmp_path / "ham10000"
    for part in ("HAM10000_images_part_1", "HAM10000_images_part_2"):
        for f in (home / part).iterdir():
            f.unlink()
        (home / part).rmdir()
    with pytest.raises(FileNotFoundError, match="HAM10000_images_part_1"):
        load_ham10000(data_home=tmp_path)

    write_pad_ufes20(tmp_path, 4, random_state=0)
    csv = tmp_path / "pad-ufes-20" / "metadata.csv"
    pd.read_csv(csv).rename(columns={"fitspatrick": "fitzpatrick", "img_id": "image"}).to_csv(
        csv, index=False)
    with pytest.raises(ValueError, match=r"misses the column\(s\) \['fitspatrick', 'img_id'\]"):
        load_pad_ufes20(data_home=tmp_path)


def test_data_home_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("FAIRSKL_DATA", str(tmp_path))
    assert get_data_home() == tmp_path
    write_pad_ufes20(tmp_path, 3, random_state=0)
    data = load_pad_ufes20(image_size=8)
    assert data.images.shape == (3, 3, 8, 8)
    assert any(f.endswith(".json") for f in os.listdir(tmp_path / "fairskl_cache"))
    monkeypatch.delenv("FAIRSKL_DATA")
    assert get_data_home() == Path("~/fairskl_data").expanduser()


def test_parallel_decoding_gives_the_same_images(tmp_path):
    write_pad_ufes20(tmp_path, 140, random_state=0, shape=(12, 12))  # 3 chunks
    serial = load_pad_ufes20(data_home=tmp_path, image_size=8, cache=False)
    parallel = load_pad_ufes20(data_home=tmp_path, image_size=8, cache=False, n_jobs=2)
    np.testing.assert_array_equal(serial.images, parallel.images)


def test_invalid_arguments(tmp_path):
    write_ham10000(tmp_path, 3, random_state=0)
    with pytest.raises(ValueError, match="image_size must be an integer >= 1, got 0"):
        load_ham10000(data_home=tmp_path, image_size=0)
    with pytest.raises(ValueError, match="on_error must be 'warn' or 'raise'"):
        load_ham10000(data_home=tmp_path, on_error="ignore")
    with pytest.raises(ValueError, match=r"unknown: \['melanoma'\]"):
        load_ham10000(data_home=tmp_path, malignant=("melanoma",))
    with pytest.raises(ValueError, match="target must be one of"):
        load_fitzpatrick17k(data_home=tmp_path, target="dx")
    for loader in (load_ham10000, load_fitzpatrick17k, load_pad_ufes20):
        with pytest.raises(ValueError, match=r"resize must be 'squash' or 'crop', got 'center'\. "
                                             r"'squash' resizes"):
            loader(data_home=tmp_path, resize="center")
    with pytest.raises(ValueError, match="resize must be 'squash' or 'crop', got None"):
        _cache.decode_image(tmp_path / "any.png", 8, resize=None)


# ------------------------------------------------------------------------------------------
# Harvard-GF
# ------------------------------------------------------------------------------------------
def test_harvard_glaucoma_layout_splits_and_values(tmp_path):
    write_harvard_gf(tmp_path, 8, random_state=0)
    data = load_harvard_glaucoma(data_home=tmp_path, image_size=10, as_frame=True)
    files = sorted((tmp_path / "harvard-gf").glob("*/*.npz"))
    assert data.images.shape == (8, 1, 10, 10) and data.images.dtype == np.float32
    assert list(data.split).count("train") == 4 and set(data.split) == {"train", "val", "test"}
    for row, path in enumerate(data.frame["path"]):
        with np.load(path) as npz:
            assert data.target.iloc[row] == int(npz["glaucoma"])
            assert data.sensitive["race"][row] == ["Asian", "Black", "White"][int(npz["race"])]
            assert data.sensitive["sex"][row] == ("male" if npz["male"] else "female")
            assert data.sensitive["age"][row] == pytest.approx(float(npz["age"]))
    assert len(set(data.groups)) == len(files)
    test = load_harvard_glaucoma(data_home=tmp_path, split="test", image_size=10)
    assert set(test.split) == {"test"} and len(test.target) == 2

    # a constant map of 175 micrometres is 175 / 350 = 0.5 after scaling, at any size
    with np.load(files[0]) as npz:
        content = dict(npz)
    content["rnflt"] = np.full((30, 30), 175.0, dtype=np.float32)
    np.savez(files[0], **content)
    one = load_harvard_glaucoma(data_home=tmp_path, image_size=7, cache=False)
    row = list(one.groups).index(f"{files[0].parent.name}/{files[0].stem}")
    np.testing.assert_allclose(one.images[row], 0.5, atol=1e-6)


def test_harvard_race_codes_or_names_and_unknown_raises(tmp_path):
    write_harvard_gf(tmp_path / "a", 6, random_state=0, race_as="int")
    write_harvard_gf(tmp_path / "b", 6, random_state=0, race_as="str")
    a = load_harvard_glaucoma(data_home=tmp_path / "a", return_paths=True)
    b = load_harvard_glaucoma(data_home=tmp_path / "b", return_paths=True)
    pd.testing.assert_frame_equal(a.sensitive, b.sensitive)

    path = tmp_path / "b" / "harvard-gf" / "val" / "data_0003.npz"
    with np.load(path) as npz:
        content = dict(npz)
    np.savez(path, **(content | {"race": np.array(3)}))
    with pytest.raises(ValueError, match=r"data_0003\.npz has race=3"):
        load_harvard_glaucoma(data_home=tmp_path / "b")
    np.savez(path, **(content | {"race": np.array("Hispanic")}))
    with pytest.raises(ValueError, match="not a known race"):
        load_harvard_glaucoma(data_home=tmp_path / "b")
    del content["race"]
    np.savez(path, **content)
    with pytest.raises(ValueError, match=r"misses the key\(s\) \['race'\]"):
        load_harvard_glaucoma(data_home=tmp_path / "b")


def test_harvard_unreadable_file_skipped_or_raised(tmp_path):
    write_harvard_gf(tmp_path, 5, random_state=0)
    bad = tmp_path / "harvard-gf" / "train" / "data_0002.npz"
    bad.write_bytes(b"PK\x03\x04 broken zip")
    with pytest.warns(DataWarning, match=r"1 of 5 metadata rows left out.*data_0002\.npz"):
        data = load_harvard_glaucoma(data_home=tmp_path, image_size=8)
    assert data.images.shape[0] == 4 and "train/data_0002" not in set(data.groups)
    with pytest.raises(OSError, match="data_0002.npz"):
        load_harvard_glaucoma(data_home=tmp_path, on_error="raise")


# ------------------------------------------------------------------------------------------
# Fitzpatrick17k downloads (never the network: a fake opener or file:// URLs)
# ------------------------------------------------------------------------------------------
class _Response(io.BytesIO):
    def __init__(self, body, status):
        super().__init__(body)
        self.status = status


def test_fetch_resumes_and_retries(tmp_path, monkeypatch):
    body = bytes(range(256)) * 40
    requests = []

    def opener(request, timeout):
        rng = request.get_header("Range")
        requests.append(rng)
        if len(requests) == 1:
            raise urllib.error.URLError("connection reset")
        start = int(rng.split("=")[1].rstrip("-")) if rng else 0
        return _Response(body[start:], 206 if rng else 200)

    monkeypatch.setattr(_download, "_open", opener)
    dest = tmp_path / "img.jpg"
    Path(f"{dest}.part").write_bytes(body[:1000])  # an earlier, interrupted download
    _download.fetch("https://example.invalid/img.jpg", dest, backoff=0)
    assert dest.read_bytes() == body and not Path(f"{dest}.part").exists()
    assert requests == ["bytes=1000-", "bytes=1000-"]  # failed once, then resumed

    def not_found(request, timeout):
        requests.append("404")
        raise urllib.error.HTTPError(request.full_url, 404, "Not Found", {}, None)

    monkeypatch.setattr(_download, "_open", not_found)
    with pytest.raises(urllib.error.HTTPError):
        _download.fetch("https://example.invalid/gone.jpg", tmp_path / "gone.jpg", backoff=0)
    assert requests.count("404") == 1  # a permanent error is not retried


def test_fitzpatrick17k_download_if_missing_from_file_urls(tmp_path):
    source = tmp_path / "source"
    write_fitzpatrick17k(source, 4, n_missing=2, random_state=0)
    csv = pd.read_csv(source / "fitzpatrick17k" / "fitzpatrick17k.csv")
    images = source / "fitzpatrick17k" / "images"
    csv["url"] = [(images / f"{h}.jpg").as_uri() for h in csv["md5hash"]]
    home = tmp_path / "home" / "fitzpatrick17k"
    home.mkdir(parents=True)
    csv.to_csv(home / "fitzpatrick17k.csv", index=False)
    with pytest.warns(DataWarning) as record:
        data = load_fitzpatrick17k(data_home=tmp_path / "home", image_size=8,
                                   download_if_missing=True, n_retries=0)
    messages = [str(w.message) for w in record]
    assert any("2 of 6 metadata rows left out: the image could not be downloaded" in m
               for m in messages)
    assert any("2 of 6 metadata rows left out: no image file" in m for m in messages)
    assert sorted(data.groups) == sorted(csv["md5hash"][:4])
    for h in csv["md5hash"][:4]:
        assert (home / "images" / f"{h}.jpg").read_bytes() == (images / f"{h}.jpg").read_bytes()


def test_cache_manifest_records_sources(tmp_path):
    write_ham10000(tmp_path, 4, random_state=0)
    load_ham10000(data_home=tmp_path, image_size=8)
    manifest = json.loads((tmp_path / "fairskl_cache" / "ham10000_8px.json").read_text())
    assert manifest["meta"] == {"dataset": "HAM10000", "image_size": 8, "mode": "RGB"}
    assert manifest["shape"] == [4, 8, 8, 3] and manifest["dtype"] == "uint8"
    for path, size, mtime, row, err in manifest["entries"]:
        st = os.stat(path)
        assert (size, mtime, err) == (st.st_size, st.st_mtime_ns, None) and 0 <= row < 4


def test_unwritable_cache_warns_and_still_loads(tmp_path, monkeypatch):
    write_pad_ufes20(tmp_path, 3, random_state=0)

    def read_only(*args, **kwargs):
        raise PermissionError("read-only file system")

    monkeypatch.setattr(_cache, "_write_cache", read_only)
    with pytest.warns(DataWarning, match="could not write the image cache.*read-only"):
        data = load_pad_ufes20(data_home=tmp_path, image_size=8)
    assert data.images.shape == (3, 3, 8, 8)


def test_one_age_cut_and_a_missing_age_is_never_younger():
    from fairskl.datasets._base import AGE_CUT, age_binary

    groups = age_binary([59.0, AGE_CUT, 75, np.nan, None])
    assert list(groups) == ["<60", "60+", "60+", "unknown", "unknown"]
    assert list(groups.categories) == ["<60", "60+", "unknown"]
