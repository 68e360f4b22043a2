"""`genfast distort`: model-vs-human file names, input layouts, reproducibility and errors."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genfast.distort import DISTORTIONS
from genfast.distort.cli import register
from genfast.distort.dataset import Source, image_rng

CATEGORIES = ("bear", "clock")


def run_distort(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="genfast")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["distort", *argv])
    return args.func(args)


def write_png(path: Path, seed: int, grey: bool = False, size: int = 16) -> None:
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size) if grey else (size, size, 3))
    Image.fromarray(pixels.astype(np.uint8)).save(path)


@pytest.fixture
def category_folders(tmp_path: Path) -> Path:
    root = tmp_path / "in"
    for c, category in enumerate(CATEGORIES):
        (root / category).mkdir(parents=True)
        write_png(root / category / f"{category}_a.png", seed=2 * c)
        write_png(root / category / "b.png", seed=2 * c + 1, grey=True)
    return root


def parse_like_model_vs_human(folder: Path) -> list[dict]:
    """What model-vs-human's loaders read from a `dnn/session-1` folder: condition and category by position."""
    rows = []
    for path in sorted(folder.glob("*.png")):
        fields = path.stem.split("_")
        rows.append({"trial": fields[0], "experiment": fields[1], "subject": fields[2], "condition": fields[3],
                     "category": fields[4], "x": fields[5], "id": "_".join(fields[6:]), "path": path})
    return rows


def test_writes_model_vs_human_names_for_every_image_and_level(category_folders, tmp_path):
    out = tmp_path / "out"
    assert run_distort(["--in", str(category_folders), "--out", str(out), "--distortion", "contrast"]) == 0
    folder = out / "contrast" / "dnn" / "session-1"
    rows = parse_like_model_vs_human(folder)
    conditions = [DISTORTIONS["contrast"].condition(level) for level in DISTORTIONS["contrast"].levels]
    assert len(rows) == 2 * len(CATEGORIES) * len(conditions)
    assert [r["trial"] for r in rows] == [f"{i:04d}" for i in range(1, len(rows) + 1)]
    assert {(r["experiment"], r["subject"], r["x"]) for r in rows} == {("cop", "dnn", "10")}
    assert {(r["category"], r["id"]) for r in rows} == {(c, i) for c in CATEGORIES for i in (f"{c}_a", "b")}
    for category in CATEGORIES:
        assert sorted(r["condition"] for r in rows if r["category"] == category and r["id"] == "b") \
            == sorted(conditions)
    # the c10 image of a source is that source at 10% contrast (grey files stay greyscale, RGB stays RGB)
    row = next(r for r in rows if r["condition"] == "c10" and r["id"] == "b" and r["category"] == "bear")
    source = np.asarray(Image.open(category_folders / "bear" / "b.png"), dtype=np.float64) / 255
    written = np.asarray(Image.open(row["path"]), dtype=np.float64) / 255
    assert written.shape == (16, 16)
    np.testing.assert_allclose(written, 0.45 + 0.1 * source, atol=0.5 / 255 + 1e-9)
    rgb_row = next(r for r in rows if r["id"] == "bear_a")
    assert np.asarray(Image.open(rgb_row["path"])).shape == (16, 16, 3)


def test_levels_option_and_eidolon_conditions(category_folders, tmp_path):
    out = tmp_path / "out"
    run_distort(["--in", str(category_folders), "--out", str(out), "--distortion", "eidolonII",
                 "--levels", "1", "4-3-10"])
    rows = parse_like_model_vs_human(out / "eidolonII" / "dnn" / "session-1")
    assert sorted({r["condition"] for r in rows}) == ["1-3-10", "4-3-10"]
    assert {r["experiment"] for r in rows} == {"eid"}


def test_flat_folder_takes_the_category_from_the_name_or_the_option(tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    write_png(flat / "airplane1-bicycle2.png", seed=1)
    write_png(flat / "dog_12.png", seed=2)
    run_distort(["--in", str(flat), "--out", str(tmp_path / "a"), "--distortion", "rotation", "--levels", "90"])
    rows = parse_like_model_vs_human(tmp_path / "a" / "rotation" / "dnn" / "session-1")
    assert sorted((r["category"], r["id"], r["condition"]) for r in rows) == [
        ("airplane", "airplane1-bicycle2", "90"), ("dog", "dog_12", "90")]
    run_distort(["--in", str(flat), "--out", str(tmp_path / "b"), "--distortion", "colour", "--category", "cat"])
    rows = parse_like_model_vs_human(tmp_path / "b" / "colour" / "dnn" / "session-1")
    assert {r["category"] for r in rows} == {"cat"} and len(rows) == 4


def _outputs(root: Path) -> dict[tuple[str, str, str], bytes]:
    folder = root / "uniform-noise" / "dnn" / "session-1"
    return {(r["category"], r["id"], r["condition"]): r["path"].read_bytes()
            for r in parse_like_model_vs_human(folder)}


def test_random_distortions_are_reproducible_and_independent_of_other_images(category_folders, tmp_path):
    common = ["--distortion", "uniform-noise", "--levels", "0.2", "0.6"]
    run_distort(["--in", str(category_folders), "--out", str(tmp_path / "a"), "--seed", "7", *common])
    run_distort(["--in", str(category_folders), "--out", str(tmp_path / "b"), "--seed", "7", *common])
    run_distort(["--in", str(category_folders), "--out", str(tmp_path / "c"), "--seed", "8", *common])
    first, again, other_seed = _outputs(tmp_path / "a"), _outputs(tmp_path / "b"), _outputs(tmp_path / "c")
    assert first == again
    assert all(first[key] != other_seed[key] for key in first)
    (category_folders / "bear" / "bear_a.png").unlink()  # fewer images: the rest come out the same
    run_distort(["--in", str(category_folders), "--out", str(tmp_path / "d"), "--seed", "7", *common])
    fewer = _outputs(tmp_path / "d")
    assert len(fewer) == len(first) - 2 and all(first[key] == fewer[key] for key in fewer)


def test_each_image_and_condition_gets_its_own_random_stream():
    a, b = Source(Path("a.png"), "cat", "cat/a.png"), Source(Path("b.png"), "cat", "cat/b.png")
    draws = {(s.key, c): image_rng(7, s, c).random(8).tobytes() for s in (a, b) for c in ("0.20", "0.60")}
    assert len(set(draws.values())) == 4
    assert image_rng(7, a, "0.20").random(8).tobytes() == draws[("cat/a.png", "0.20")]


def test_unknown_distortion_is_named(category_folders, tmp_path, capsys):
    with pytest.raises(SystemExit):
        run_distort(["--in", str(category_folders), "--out", str(tmp_path), "--distortion", "sharpen"])
    assert "sharpen" in capsys.readouterr().err


def test_invalid_level_names_the_level_and_distortion(category_folders, tmp_path):
    with pytest.raises(ValueError, match=r"'45'.*'rotation'"):
        run_distort(["--in", str(category_folders), "--out", str(tmp_path), "--distortion", "rotation",
                     "--levels", "90", "45"])
    assert not (tmp_path / "rotation").exists()


def test_unreadable_image_is_named_or_skipped_on_request(category_folders, tmp_path, capsys):
    broken = category_folders / "clock" / "broken.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(ValueError, match="broken.png"):
        run_distort(["--in", str(category_folders), "--out", str(tmp_path / "a"), "--distortion", "colour"])
    run_distort(["--in", str(category_folders), "--out", str(tmp_path / "b"), "--distortion", "colour",
                 "--skip-bad"])
    assert "broken.png" in capsys.readouterr().err
    assert len(list((tmp_path / "b" / "colour" / "dnn" / "session-1").glob("*.png"))) == 4 * 2


def test_existing_output_needs_overwrite(category_folders, tmp_path):
    argv = ["--in", str(category_folders), "--out", str(tmp_path / "out"), "--distortion", "colour"]
    run_distort(argv)
    with pytest.raises(ValueError, match="--overwrite"):
        run_distort(argv)
    run_distort([*argv, "--levels", "bw", "--overwrite"])
    rows = parse_like_model_vs_human(tmp_path / "out" / "colour" / "dnn" / "session-1")
    assert len(rows) == 4 and {r["condition"] for r in rows} == {"bw"}


def test_bad_input_folders_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing"):
        run_distort(["--in", str(tmp_path / "missing"), "--out", str(tmp_path), "--distortion", "colour"])
    flat = tmp_path / "flat"
    flat.mkdir()
    write_png(flat / "123.png", seed=0)
    with pytest.raises(ValueError, match="123.png"):
        run_distort(["--in", str(flat), "--out", str(tmp_path / "o"), "--distortion", "colour"])
    with pytest.raises(ValueError, match="'my_cat'"):
        run_distort(["--in", str(flat), "--out", str(tmp_path / "o"), "--distortion", "colour",
                     "--category", "my_cat"])


def test_power_equalisation_to_the_input_spectrum(category_folders, tmp_path):
    run_distort(["--in", str(category_folders), "--out", str(tmp_path), "--distortion", "power-equalisation",
                 "--levels", "pow", "--reference-spectrum", "input"])
    written = sorted((tmp_path / "power-equalisation" / "dnn" / "session-1").glob("*.png"))
    spectra = [np.abs(np.fft.fft2(np.asarray(Image.open(p).convert("L"), dtype=np.float64) / 255)) for p in written]
    assert len(written) == 4
    for spectrum in spectra[1:]:  # one amplitude spectrum for all, up to clipping and 8-bit rounding
        assert np.abs(spectrum - spectra[0]).mean() < 0.1 * np.abs(spectra[0][1:, 1:]).mean()


def test_genfast_command_line_runs_distort(category_folders, tmp_path, capsys):
    from genfast.cli import main

    assert main(["distort", "--in", str(category_folders), "--out", str(tmp_path), "--distortion", "low-pass",
                 "--levels", "0", "3"]) == 0
    assert len(list((tmp_path / "low-pass" / "dnn" / "session-1").glob("*_lp_dnn_*.png"))) == 8
    assert main(["distort", "--in", str(category_folders), "--out", str(tmp_path), "--distortion", "low-pass",
                 "--levels", "-3", "--overwrite"]) == 2
    assert "'-3'" in capsys.readouterr().err


def test_output_loads_with_genfast_dataset_loader(category_folders, tmp_path):
    from genfast.evaluate.datasets import load_dataset

    run_distort(["--in", str(category_folders), "--out", str(tmp_path), "--distortion", "phase-scrambling",
                 "--levels", "0", "90"])
    dataset = load_dataset(tmp_path / "phase-scrambling")
    assert dataset.layout == "dnn" and len(dataset) == 8
    assert dataset.categories == CATEGORIES
    assert sorted({item.condition for item in dataset}) == ["0", "90"]
