"""model-vs-human dataset loading (genfast.evaluate.datasets) and the raw-data CSV format (rawdata)."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genfast.evaluate.datasets import NO_CONDITION, find_datasets, load_dataset, load_datasets
from genfast.vocabulary import MVH_CLASSES
from genfast.evaluate.rawdata import Row, format_raw_data, raw_data_path, sanitise_name

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared data folder {SHARED} is absent")


def write_image(path: Path, value: int, fmt: str = "PNG") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((4, 4, 3), value, dtype=np.uint8)).save(path, format=fmt)
    return path


def make_category_dataset(root: Path, files: dict[str, list[str]]) -> Path:
    for n, (category, names) in enumerate(files.items()):
        for m, name in enumerate(names):
            write_image(root / category / name, 10 * n + m, "JPEG" if name.endswith(".jpg") else "PNG")
    return root


DNN_NAMES = ["0002_cop_dnn_c100_knife_10_n03041632_7380.png", "0001_cop_dnn_c30_bird_10_n01601694_10802.png",
             "0003_cop_dnn_c05_airplane_10_n02690373_9759.png"]


def make_dnn_dataset(root: Path, names: list[str] = DNN_NAMES) -> Path:
    for n, name in enumerate(names):
        write_image(root / "dnn" / "session-1" / name, 40 + n)
    return root


def test_category_layout_order_and_fields(tmp_path):
    root = make_category_dataset(tmp_path / "cue-conflict", {"cat": ["cat2-dog1.png", "cat10-bear1.jpg"],
                                                               "bear": ["bear1-cat3.png"]})
    (root / "cat" / "notes.txt").write_text("not an image")
    write_image(root / "bear" / ".hidden.png", 1)
    ds = load_dataset(root, classes=MVH_CLASSES)
    assert ds.name == "cue-conflict" and ds.layout == "category"
    assert [(i.category, i.imagename, i.condition, i.relpath, i.trial) for i in ds] == [
        ("bear", "bear1-cat3.png", NO_CONDITION, "bear/bear1-cat3.png", 1),
        ("cat", "cat10-bear1.jpg", NO_CONDITION, "cat/cat10-bear1.jpg", 2),
        ("cat", "cat2-dog1.png", NO_CONDITION, "cat/cat2-dog1.png", 3)]
    assert ds.categories == ("bear", "cat") and len(ds) == 3
    assert all(item.path == root / item.relpath for item in ds)


def test_dnn_layout_splits_condition_and_category(tmp_path):
    ds = load_dataset(make_dnn_dataset(tmp_path / "contrast"))
    assert ds.layout == "dnn"
    assert [(i.trial, i.condition, i.category, i.imagename) for i in ds] == [
        (1, "c30", "bird", DNN_NAMES[1]), (2, "c100", "knife", DNN_NAMES[0]), (3, "c05", "airplane", DNN_NAMES[2])]
    assert ds.items[0].relpath == f"dnn/session-1/{DNN_NAMES[1]}"


def test_plain_folder_and_dataset_roots(tmp_path):
    plain = make_category_dataset(tmp_path / "digits", {"0": ["a.png"], "1": ["b.png", "c.png"]})
    [ds] = load_datasets(plain)
    assert ds.name == "digits" and [i.category for i in ds] == ["0", "1", "1"]

    root = tmp_path / "stimuli"
    make_category_dataset(root / "edges", {"cat": ["cat1.png"]})
    make_dnn_dataset(root / "contrast")
    (root / "empty").mkdir()
    assert find_datasets(root) == ["contrast", "edges"]
    assert [d.name for d in load_datasets(root)] == ["contrast", "edge"]
    [edge] = load_datasets(root, ["edge"])  # the texture-vs-shape folder name is accepted for edge
    assert edge.name == "edge" and edge.root == root / "edges"


def test_limit_keeps_the_first_items(tmp_path):
    root = make_category_dataset(tmp_path / "edge", {"cat": ["cat1.png", "cat2.png"], "dog": ["dog1.png"]})
    assert [i.imagename for i in load_dataset(root, limit=2)] == ["cat1.png", "cat2.png"]
    with pytest.raises(ValueError, match="limit"):
        load_dataset(root, limit=0)


def test_layout_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_dataset(tmp_path / "nothing")
    flat = tmp_path / "flat"
    write_image(flat / "a.png", 1)
    with pytest.raises(ValueError, match="unknown layout"):
        load_dataset(flat)
    with pytest.raises(ValueError, match="unknown layout"):
        load_datasets(flat)
    (tmp_path / "nodnn" / "dnn").mkdir(parents=True)
    with pytest.raises(ValueError, match="session-1"):
        load_dataset(tmp_path / "nodnn")
    empty = make_category_dataset(tmp_path / "edge", {"cat": ["cat1.png"]})
    (empty / "dog").mkdir()
    with pytest.raises(ValueError, match=r"empty folder .*dog"):
        load_dataset(empty)
    with pytest.raises(ValueError, match="on_error"):
        load_dataset(tmp_path / "edge", on_error="ignore")


def test_unknown_dataset_lists_the_ones_found(tmp_path):
    make_category_dataset(tmp_path / "edges", {"cat": ["cat1.png"]})
    make_dnn_dataset(tmp_path / "contrast")
    with pytest.raises(ValueError, match=r"unknown dataset 'sketch'.*contrast, edge \(folder edges\)"):
        load_datasets(tmp_path, ["sketch"])
    with pytest.raises(ValueError, match="twice"):
        load_datasets(tmp_path, ["contrast", "contrast"])


def test_category_must_be_a_class(tmp_path):
    root = make_category_dataset(tmp_path / "edge", {"cat": ["cat1.png"], "zebra": ["z.png"]})
    with pytest.raises(ValueError, match=r"category 'zebra' .*z\.png is not one of the classes"):
        load_dataset(root, classes=MVH_CLASSES)
    dnn = make_dnn_dataset(tmp_path / "contrast", ["0001_cop_dnn_c30_zebra_10_n0_1.png"])
    with pytest.raises(ValueError, match="category 'zebra'"):
        load_dataset(dnn, classes=MVH_CLASSES)


def test_unreadable_image_raises_or_is_skipped(tmp_path):
    root = make_category_dataset(tmp_path / "edge", {"cat": ["cat1.png", "cat3.png"]})
    broken = root / "cat" / "cat2.png"
    broken.write_bytes((root / "cat" / "cat1.png").read_bytes()[:30])  # truncated PNG
    with pytest.raises(ValueError, match=r"cat2\.png: unreadable image"):
        load_dataset(root)
    ds = load_dataset(root, on_error="skip")
    assert [(i.imagename, i.trial) for i in ds] == [("cat1.png", 1), ("cat3.png", 3)]
    assert [s.path for s in ds.skipped] == [broken] and "unreadable" in ds.skipped[0].reason
    for good in ("cat1.png", "cat3.png"):
        (root / "cat" / good).write_bytes(b"not a png")
    with pytest.raises(ValueError, match="no readable images"):
        load_dataset(root, on_error="skip")


def test_malformed_dnn_file_name(tmp_path):
    root = make_dnn_dataset(tmp_path / "contrast", DNN_NAMES[:1] + ["0009_bad.png"])
    with pytest.raises(ValueError, match=r"0009_bad\.png: file name does not split"):
        load_dataset(root)
    ds = load_dataset(root, on_error="skip")
    assert [i.imagename for i in ds] == DNN_NAMES[:1] and len(ds.skipped) == 1


def test_raw_data_format():
    rows = [Row(1, "cat", "dog", NO_CONDITION, "dog1.png"), Row(2, "knife", "knife", "c30", "0002_x,y.png")]
    assert format_raw_data("sd-1.5", rows) == (
        "subj,session,trial,rt,object_response,category,condition,imagename\r\n"
        "sd-1.5,1,1,NaN,cat,dog,NaN,dog1.png\r\n"
        'sd-1.5,1,2,NaN,knife,knife,c30,"0002_x,y.png"\r\n')
    assert raw_data_path("out", "edge", "sd-1.5") == Path("out/raw-data/edge/edge_sd-1.5_session-1.csv")
    with pytest.raises(ValueError, match="must not contain '_'"):
        raw_data_path("out", "edge", "sd_1.5")
    assert sanitise_name("my_model v2/") == "my-model-v2"
    with pytest.raises(ValueError, match="no letters"):
        sanitise_name("__")


@needs_shared
@pytest.mark.parametrize("name,folder", [("edge", "edges"), ("silhouette", "filled-silhouettes"),
                                         ("cue-conflict", "cue-conflict")])
def test_texture_vs_shape_matches_toolbox_raw_data(name, folder):
    """Same image names, categories, conditions and order as the toolbox's ResNet-50 raw data."""
    [ds] = load_datasets(SHARED / "texture-vs-shape", [name], classes=MVH_CLASSES)
    assert ds.root.name == folder
    with open(SHARED / "model-vs-human" / "raw-data" / name / f"{name}_resnet50_session-1.csv", newline="") as f:
        reference = list(csv.DictReader(f))
    ours = [(i.imagename, i.category, i.condition) for i in ds]
    theirs = [(r["imagename"], r["category"], r["condition"]) for r in reference]
    names = {i.imagename for i in ds}
    assert ours == [t for t in theirs if t[0] in names]  # the shared cue-conflict folder is a subset
    if len(ds) == len(reference):
        assert [i.trial for i in ds] == [int(r["trial"]) for r in reference]


@needs_shared
def test_raw_data_writer_reproduces_toolbox_file_bytes():
    path = SHARED / "model-vs-human" / "raw-data" / "contrast" / "contrast_resnet50_session-1.csv"
    with open(path, newline="") as f:
        reference = list(csv.DictReader(f))
    rows = [Row(int(r["trial"]), r["object_response"], r["category"], r["condition"], r["imagename"])
            for r in reference]
    assert format_raw_data("resnet50", rows).encode() == path.read_bytes()
