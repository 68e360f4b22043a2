"""The per-image audit: each image's cost to a model's error consistency (against a hand computation and the
benchmark's own numbers), the audit page's rows and embedded thumbnails, `genfast report --audit`, and the page in a
real headless browser (Chromium, installed with apt-get by the set-up where it is missing and this runs as root)."""
from __future__ import annotations

import base64
import csv
import io
import os
import re
import shlex
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from genfast.cli import main
from genfast.metrics import benchmark_trials, dataset_info, humanlike_by_dataset, humanlike_pairs, image_costs, \
    read_raw_data
from genfast.metrics.audit import AUDIT_COLUMNS
from genfast.plots import write_audit
from genfast.testing.rawdata import write_fake_raw_data

IMAGES = ("airplane1.png", "bear1.png", "cat1.png", "dog1.png")  # categories: the file names' letters
RESPONSES = {  # observer: its answer to each of IMAGES
    "toy": ("cat", "bear", "cat", "dog"),  # right: 0 1 1 1
    "ace": ("airplane", "bear", "cat", "dog"),  # right: 1 1 1 1
    "subject-01": ("airplane", "bear", "dog", "cat"),  # right: 1 1 0 0
    "subject-02": ("airplane", "dog", "cat", "dog"),  # right: 1 0 1 1
}
COLOURS = {"airplane1.png": (255, 0, 0), "bear1.png": (0, 160, 0), "cat1.png": (0, 0, 255)}  # dog1.png: no file
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
BROWSER_TIMEOUT = 120  # seconds per launch; a launch takes about 1.5 s


def write_edge(root: Path, observers: tuple[str, ...] = tuple(RESPONSES)) -> Path:
    """The edge raw data of `observers` (RESPONSES) under `root`/raw-data, named as the toolbox names them."""
    for observer in observers:
        human = observer.startswith("subject-")
        rows = [["subj", "session", "trial", "rt", "object_response", "category", "condition", "imagename"]]
        for trial, (image, response) in enumerate(zip(IMAGES, RESPONSES[observer]), start=1):
            category = Path(image).stem.rstrip("0123456789")
            name = f"{trial:04d}_edg_s{observer[-2:]}_0_{category}_00_{image}" if human else image
            rows.append([observer, 1, trial, "0.5" if human else "NaN", response, category,
                         "0" if human else "NaN", name])
        path = root / "raw-data" / "edge" / f"edge_{observer}_session{'_' if human else '-'}1.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as f:
            csv.writer(f).writerows(rows)
    return root / "raw-data"


def write_edge_images(root: Path) -> Path:
    """COLOURS as solid 224x224 images in the texture-vs-shape layout (`edges/<category>/<file>`); dog1.png lacks."""
    for name, colour in COLOURS.items():
        path = root / "edges" / Path(name).stem.rstrip("0123456789") / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (224, 224), colour).save(path)
    return root


@pytest.fixture
def edge(tmp_path: Path) -> tuple[pd.DataFrame, Path, Path]:
    """(trials, raw-data folder, images folder) of the hand-made edge data."""
    raw = write_edge(tmp_path)
    return read_raw_data(raw), raw, write_edge_images(tmp_path / "images")


def test_costs_match_a_hand_computation(edge: tuple[pd.DataFrame, Path, Path]) -> None:
    trials = edge[0]
    # toy is right on 3 of 4 images (p = 3/4); subject-01 on 2 (p = 1/2), subject-02 on 3.
    # c_exp = 3/4 * 1/2 + 1/4 * 1/2 = 1/2 with subject-01; 3/4 * 3/4 + 1/4 * 1/4 = 5/8 with subject-02.
    # An image costs 1 / (C S n) = 1/8 per differing subject, times 1 / (1 - c_exp): 2 (subject-01), 8/3 (-02).
    # airplane1: toy wrong, both right; bear1: -02 differs; cat1 and dog1: -01 differs (ties keep id order).
    costs = image_costs(trials, "toy", "edge")
    assert tuple(costs.columns) == AUDIT_COLUMNS
    assert list(costs["image_id"]) == ["airplane1.png", "bear1.png", "cat1.png", "dog1.png"]
    np.testing.assert_allclose(costs["cost"], [(2 + 8 / 3) / 8, (8 / 3) / 8, 2 / 8, 2 / 8], rtol=1e-12)
    np.testing.assert_allclose(costs["disagreement"], [1, 0.5, 0.5, 0.5])
    assert list(costs["response"]) == ["cat", "bear", "cat", "dog"]
    assert list(costs["correct"]) == [False, True, True, True]
    assert list(costs["humans_right"]) == [2, 1, 1, 1] and set(costs["humans"]) == {2}
    assert list(costs["human_responses"]) == [{"airplane": 2}, {"bear": 1, "dog": 1}, {"cat": 1, "dog": 1},
                                              {"cat": 1, "dog": 1}]
    # kappa = 1 - sum of costs: subject-01 c_obs 1/4, kappa -1/2; subject-02 c_obs 1/2, kappa -1/3
    kappa = humanlike_by_dataset(humanlike_pairs(trials)).loc[("toy", "edge"), "error_consistency"]
    assert 1 - costs["cost"].sum() == pytest.approx(-5 / 12, abs=1e-12)
    assert kappa == pytest.approx(-5 / 12, abs=1e-12)
    # ace is always right (p = 1): 1 - c_exp is 1/2 and 1/4; airplane1 costs nothing
    ace = image_costs(trials, "ace", "edge")
    assert list(ace["image_id"]) == ["bear1.png", "cat1.png", "dog1.png", "airplane1.png"]
    np.testing.assert_allclose(ace["cost"], [4 / 8, 2 / 8, 2 / 8, 0], rtol=1e-12)


def test_costs_sum_to_the_benchmark_shortfall(tmp_path: Path) -> None:
    """On random data with several benchmark conditions, a dataset's costs add up to 1 - the benchmark's error
    consistency of the model, and only benchmark conditions appear."""
    write_fake_raw_data(tmp_path, ["m1", "m2"], subjects=3, images=8)
    trials = read_raw_data(tmp_path)
    kappa = humanlike_by_dataset(humanlike_pairs(trials))["error_consistency"]
    for dataset in ("contrast", "cue-conflict"):
        conditions = set(benchmark_trials(trials.loc[trials["dataset"] == dataset])["condition"].astype(str))
        for model in ("m1", "m2"):
            costs = image_costs(trials, model, dataset)
            assert set(costs["condition"]) == conditions
            assert len(costs) == 8 * len(conditions)
            assert 1 - costs["cost"].sum() == pytest.approx(kappa[(model, dataset)], abs=1e-12)
            assert costs["cost"].is_monotonic_decreasing and (costs["cost"] >= 0).all()
    assert len(dataset_info("contrast").benchmark_conditions) < len(dataset_info("contrast").condition_keys)


def test_costs_need_the_model_and_subjects(edge: tuple[pd.DataFrame, Path, Path]) -> None:
    trials = edge[0]
    with pytest.raises(ValueError, match="^dataset 'edge': no raw data of model 'resnet50'$"):
        image_costs(trials, "resnet50", "edge")
    models_only = trials.loc[~trials["observer"].astype(str).str.startswith("subject-")]
    with pytest.raises(ValueError, match="^dataset 'edge': no human subjects to compare model 'toy' with$"):
        image_costs(models_only, "toy", "edge")


class Tables(HTMLParser):
    """Per <h3> heading, the rows of its table: each row's cell texts and the src of each <img>."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[tuple[list[str], list[str]]]] = {}
        self.sources: list[str] = []
        self._heading: str | None = None
        self._in_heading = False
        self._cells: list[str] | None = None
        self._images: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        for key in ("src", "href"):
            if named.get(key) is not None:
                self.sources.append(str(named[key]))
        if tag == "h3":
            self._in_heading, self._heading = True, ""
        elif tag == "tr" and self._heading is not None:
            self._cells, self._images = [], []
        elif tag == "td" and self._cells is not None:
            self._cells.append("")
        elif tag == "img" and self._cells is not None:
            self._images.append(str(named["src"]))
        elif tag == "br" and self._cells:
            self._cells[-1] += " "

    def handle_endtag(self, tag: str) -> None:
        if tag == "h3":
            self._in_heading = False
            self.tables[self._heading] = []
        elif tag == "tr" and self._cells:
            self.tables[self._heading].append(([cell.strip() for cell in self._cells], self._images))
            self._cells = None

    def handle_data(self, data: str) -> None:
        if self._in_heading:
            self._heading += data
        elif self._cells:
            self._cells[-1] += data


def read_tables(page: str) -> Tables:
    parser = Tables()
    parser.feed(page)
    return parser


def decode(source: str) -> Image.Image:
    prefix = "data:image/jpeg;base64,"
    assert source.startswith(prefix)
    return Image.open(io.BytesIO(base64.b64decode(source[len(prefix):], validate=True))).convert("RGB")


def test_audit_page_lists_the_most_costly_images(edge: tuple[pd.DataFrame, Path, Path], tmp_path: Path) -> None:
    trials, raw, images = edge
    page = write_audit(trials, tmp_path / "out" / "audit.html", 3, images, source=str(raw)).read_text()
    parsed = read_tables(page)
    assert list(parsed.tables) == ["ace on edge", "toy on edge"]
    toy = parsed.tables["toy on edge"]
    assert [cells for cells, _ in toy] == [
        ["1", "airplane1.png", "all", "airplane", "cat (wrong)", "2/2", "airplane 2", "0.5833"],
        ["2", "bear1.png", "all", "bear", "bear (right)", "1/2", "bear 1, dog 1", "0.3333"],
        ["3", "cat1.png", "all", "cat", "cat (right)", "1/2", "cat 1, dog 1", "0.2500"]]
    ace = parsed.tables["ace on edge"]
    assert [cells[1] for cells, _ in ace] == ["bear1.png", "cat1.png", "image not found dog1.png"]
    for cells, sources in [*toy, *ace]:  # every thumbnail decodes, small, in its image's colour
        if cells[1] in COLOURS:
            (source,) = sources
            thumbnail = decode(source)
            assert max(thumbnail.size) == 128
            np.testing.assert_allclose(np.asarray(thumbnail).reshape(-1, 3).mean(axis=0), COLOURS[cells[1]],
                                       atol=3)
        else:
            assert sources == []
    assert "&kappa; = -0.417 (1 &minus; &kappa; = 1.417)" in page and "&kappa; = 0.000" in page
    assert f"images from {images / 'edges'}" in page and "costs of a dataset's images add up to 1" in page
    assert all(source.startswith("data:") for source in parsed.sources) and len(parsed.sources) == 6  # 5 + icon
    assert "<script" not in page and "http:" not in page and "https:" not in page


def test_audit_finds_dnn_images_by_condition_and_image_id(tmp_path: Path) -> None:
    """The raw data's image names differ from the files' (another trial number and experiment); the files are
    found by condition and image id, as the consistency code matches trials; no images folder names each image."""
    write_fake_raw_data(tmp_path / "raw-data", ["m1"], subjects=2, datasets=("contrast",), images=4)
    trials = read_raw_data(tmp_path / "raw-data")
    folder = tmp_path / "images" / "contrast" / "dnn" / "session-1"
    folder.mkdir(parents=True)
    for row in trials.loc[trials["observer"] == "m1"].itertuples():
        Image.new("RGB", (224, 224), (200, 100, 0)).save(
            folder / f"{9000 + row.trial:04d}_cop_dnn_{row.condition}_{row.category}_00_{row.image_id}")
    page = write_audit(trials, tmp_path / "audit.html", 2, tmp_path / "images").read_text()
    sources = [s for cells, s in read_tables(page).tables["m1 on contrast"]]
    assert len(sources) == 2 and all(len(s) == 1 for s in sources) and "image not found" not in page
    bare = write_audit(trials, tmp_path / "bare.html", 2).read_text()
    assert "no images folder given (--images): images not shown" in bare
    assert bare.count("image not found") == 2 and "<img" not in bare


def test_report_audit_command(edge: tuple[pd.DataFrame, Path, Path], tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    _, raw, images = edge
    out = tmp_path / "report"
    assert main(["report", "--raw-data", str(raw), "--out", str(out), "--figures", "consistency", "--audit", "1",
                 "--images", str(images)]) == 0
    assert str(out / "audit.html") in capsys.readouterr().out.splitlines()
    tables = read_tables((out / "audit.html").read_text()).tables
    assert {title: [cells[1] for cells, _ in rows] for title, rows in tables.items()} == {
        "ace on edge": ["bear1.png"], "toy on edge": ["airplane1.png"]}
    assert "<a href='audit.html'>audit.html</a>" in (out / "summary.html").read_text()  # the summary links it
    assert "[audit.html](audit.html)" in (out / "summary.md").read_text()
    assert main(["report", "--raw-data", str(raw), "--out", str(tmp_path / "plain"), "--figures", "consistency"]) == 0
    assert "audit.html" not in (tmp_path / "plain" / "summary.html").read_text()
    assert main(["report", "--raw-data", str(raw), "--out", str(out), "--images", str(images)]) == 2
    assert f"--images {images}: only used with --audit N" in capsys.readouterr().err
    assert main(["report", "--raw-data", str(raw), "--out", str(out), "--audit", "1", "--images",
                 str(tmp_path / "nowhere")]) == 2
    assert f"images folder {tmp_path / 'nowhere'} does not exist" in capsys.readouterr().err
    assert main(["report", "--raw-data", str(raw), "--out", str(out), "--audit", "0"]) == 2
    assert "--audit: expected a positive integer, got '0'" in capsys.readouterr().err
    models_only = write_edge(tmp_path / "models-only", ("toy",))
    assert main(["report", "--raw-data", str(models_only), "--out", str(out), "--audit", "5"]) == 2
    assert "audit: no dataset of" in capsys.readouterr().err


def _find_browser() -> str | None:
    return next((path for path in map(shutil.which, BROWSERS) if path), None)


def _apt(*command: str) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(["apt-get", *command], capture_output=True, text=True, timeout=900,
                              env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    except subprocess.TimeoutExpired:
        return None


@pytest.fixture(scope="session")
def browser() -> str:
    """A Chromium for --headless: on PATH, or Debian's `chromium` installed with apt-get (once, about 20 s) where
    this runs as root; the test skips, saying why, only where neither works."""
    found = _find_browser()
    if found is not None:
        return found
    if getattr(os, "geteuid", lambda: -1)() != 0 or shutil.which("apt-get") is None:
        pytest.skip(f"no browser ({', '.join(BROWSERS)}) on PATH, and it cannot be installed here: the set-up "
                    f"installs Debian's chromium with apt-get as root only")
    install = ("install", "-y", "--no-install-recommends", "chromium")
    result = _apt(*install)
    if result is None or result.returncode != 0:  # a fresh machine may have no package lists yet
        _apt("update")
        result = _apt(*install)
    found = _find_browser()
    if found is None:
        why = "timed out" if result is None else (result.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.skip(f"no browser ({', '.join(BROWSERS)}) on PATH and `apt-get install chromium` failed: {why}")
    return found


def load(browser: str, page: Path, work: Path) -> tuple[np.ndarray, list[str]]:
    """Open `page` in headless Chromium: (its screenshot as RGB pixels, the console messages it logged)."""
    shot = work / f"{page.stem}.png"
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={work / page.stem}",
               f"--screenshot={shot}", "--window-size=1200,2000", "--enable-logging=stderr", "--v=0", page.as_uri()]
    result = subprocess.run(command, capture_output=True, text=True, timeout=BROWSER_TIMEOUT)
    assert result.returncode == 0 and shot.is_file(), result.stderr[-3000:]
    console = re.findall(r":CONSOLE[^\]]*\] (.*)", result.stderr)
    return np.asarray(Image.open(shot).convert("RGB")), console


# Added to a copy of the page: logs every element whose resource fails to load, and on load how many images
# there are and how many decoded.
PROBE = ("<script>addEventListener('error', e => { if (e.target !== window) console.log('PROBE failed ' + "
         "(e.target.src || e.target.href)); }, true); addEventListener('load', () => { const i = [...document.images]; "
         "console.log('PROBE images ' + i.length + ' decoded ' + i.filter(x => x.complete && x.naturalWidth > 0)"
         ".length); });</script>")


def test_audit_page_in_a_headless_browser(browser: str, edge: tuple[pd.DataFrame, Path, Path],
                                          tmp_path: Path) -> None:
    trials, raw, images = edge
    page = write_audit(trials, tmp_path / "audit.html", 3, images, source=str(raw))
    pixels, console = load(browser, page, tmp_path)
    assert console == []  # no console message at all: no script error, no blocked or failed resource
    assert pixels.shape == (2000, 1200, 3) and pixels.std() > 20  # not blank
    for name, colour in COLOURS.items():  # each thumbnail drawn, 128 px a side (twice each: toy's and ace's)
        drawn = (np.abs(pixels.astype(int) - colour).max(axis=2) < 40).sum()
        assert drawn >= (2 if name != "airplane1.png" else 1) * 120 * 120, name
    probed = tmp_path / "probed.html"
    probed.write_text(page.read_text().replace("<head>", f"<head>{PROBE}", 1))
    _, console = load(browser, probed, tmp_path)
    assert console == [f'"PROBE images 5 decoded 5", source: {probed.as_uri()} (1)']


SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED / "model-vs-human").is_dir() or not (SHARED / "texture-vs-shape").is_dir(),
                    reason=f"the toolbox's raw data and the texture-vs-shape stimuli not found in {SHARED}")
def test_readme_audit_command_on_the_toolbox_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's audit command as written, in a checkout laid out as the toolbox's: its raw data, and its
    datasets folder holding the edge and silhouette stimuli (texture-vs-shape's, the same images)."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    start = readme.index("```bash\n", readme.index("Per-image audit:")) + len("```bash\n")
    argv = shlex.split(readme[start:readme.index("```\n", start)].replace("\\\n", " "))  # as bash joins lines
    assert argv[:2] == ["genfast", "report"] and "--audit" in argv
    checkout = tmp_path / "model-vs-human"
    (checkout / "datasets").mkdir(parents=True)
    (checkout / "raw-data").symlink_to(SHARED / "model-vs-human" / "raw-data")
    for folder, dataset in (("edges", "edge"), ("filled-silhouettes", "silhouette")):
        (checkout / "datasets" / dataset).symlink_to(SHARED / "texture-vs-shape" / folder)
    monkeypatch.chdir(tmp_path)
    assert main(argv[1:]) == 0
    page = (tmp_path / "report" / "audit.html").read_text()
    tables = read_tables(page).tables
    top = int(argv[argv.index("--audit") + 1])
    assert len(tables) == 6 and all(len(rows) == top for rows in tables.values())  # 3 models x 2 datasets
    assert "image not found" not in page and page.count("<img") == 6 * top
    costs = image_costs(read_raw_data(checkout / "raw-data", ["edge"]), "resnet50", "edge")
    assert [cells[1] for cells, _ in tables["resnet50 on edge"]] == list(costs["imagename"][:top])
