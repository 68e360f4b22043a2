"""Plot definitions: the toolbox's definitions of its models are the default, a TOML file (`genfast report
--plot-definitions`) or a mapping is laid over them, models are coloured by family and told apart by marker, and a
malformed file is a one-line error naming it and the entry."""
from __future__ import annotations

from pathlib import Path

import pytest

from genfast.cli import main
from genfast.metrics import HUMANS, read_raw_data, summarise
from genfast.plots import plot_shape_bias
from genfast.plots.definitions import (MARKERS, TOOLBOX, TOOLBOX_DEFINITIONS, definitions_from_mapping,
                                       load_definitions)

FIXTURES = Path(__file__).parent / "fixtures" / "metrics" / "raw-data"


def _rgb(r: int, g: int, b: int) -> tuple[float, float, float]:
    return (round(r / 255, 6), round(g / 255, 6), round(b / 255, 6))


def test_toolbox_definitions_are_the_default() -> None:
    # names as the toolbox's raw-data files write them ('-' for '_')
    styles = TOOLBOX_DEFINITIONS.styles(["simclr-resnet50x1", "resnet50-l2-eps0-5", "clip", "resnet50",
                                         "transformer-B16-IN21K"])
    assert list(styles) == ["resnet50", "simclr-resnet50x1", "resnet50-l2-eps0-5", "clip", "transformer-B16-IN21K",
                            HUMANS]  # the toolbox's order of families, humans last
    assert (styles[HUMANS].colour, styles[HUMANS].marker, styles[HUMANS].label) == (_rgb(165, 30, 55), "D", "humans")
    assert (styles["simclr-resnet50x1"].colour, styles["simclr-resnet50x1"].label) == \
        (_rgb(215, 180, 105), "SimCLR: ResNet-50x1")
    assert styles["resnet50-l2-eps0-5"].colour == _rgb(176, 190, 220)
    assert styles["resnet50-l2-eps0-5"].label == "ResNet-50 L2 eps 0.5"
    assert (styles["clip"].colour, styles["clip"].marker, styles["clip"].label) == \
        (_rgb(145, 105, 70), "v", "CLIP: ViT-B (400M)")
    assert (styles["resnet50"].colour, styles["resnet50"].family) == (_rgb(230, 230, 230), "supervised (ImageNet)")
    assert styles["transformer-B16-IN21K"].colour == _rgb(50, 110, 30)


def test_legend_order_follows_the_families() -> None:
    names = ["toy", "clip", "resnet50", "simclr-resnet50x1", "alexnet"]
    assert TOOLBOX_DEFINITIONS.order(names) == ["alexnet", "resnet50", "simclr-resnet50x1", "clip", "toy"]


def test_a_family_tells_its_models_apart_by_marker() -> None:
    supervised = [name for name, entry in TOOLBOX["models"].items() if entry["family"] == "supervised"]
    styles = TOOLBOX_DEFINITIONS.styles(supervised)
    looks = [(styles[m].colour, styles[m].marker) for m in supervised]
    assert len(supervised) == 24 and len(set(looks)) == 24
    assert [marker for _, marker in looks[:15]] == list(MARKERS)  # the family's marker "o" first
    assert {colour for colour, _ in looks[:15]} == {_rgb(230, 230, 230)}
    darker = {colour for colour, _ in looks[15:]}
    assert len(darker) == 1 and all(c < 0.9 for c in darker.pop())  # one shade darker once markers run out


def test_undefined_models_join_the_family_of_their_first_word() -> None:
    styles = TOOLBOX_DEFINITIONS.styles(["sd2-base", "sd2_large", "flux-dev", "clip-vit-l"])
    assert styles["sd2-base"].colour == styles["sd2_large"].colour != styles["flux-dev"].colour
    assert (styles["sd2-base"].marker, styles["sd2_large"].marker) == ("o", "s")
    assert styles["sd2-base"].family == "sd2" and styles["sd2-base"].label == "sd2-base"
    assert styles["clip-vit-l"].family == "CLIP (400M)"  # the toolbox's clip family
    toolbox_colours = {family.colour for family in TOOLBOX_DEFINITIONS.families.values()}
    assert styles["sd2-base"].colour not in toolbox_colours


def test_a_toml_file_is_laid_over_the_toolbox(tmp_path: Path) -> None:
    path = tmp_path / "plots.toml"
    path.write_text('[humans]\nlabel = "people"\n\n'
                    '[families.sd]\ncolour = "#1f77b4"\nmarker = "s"\nlabel = "Stable Diffusion"\n\n'
                    '[models.sd2_base]\nfamily = "sd"\nlabel = "SD 2 (base)"\n\n'
                    '[models.sd2-large]\nfamily = "sd"\nmarker = "^"\n\n'
                    '[models.resnet50]\nlabel = "ResNet-50"\n\n'
                    '[models.toy]\nfamily = "supervised"\ncolour = [0, 0, 0]\nmarker = "X"\n')
    definitions = load_definitions(path)
    assert definitions.source == str(path)
    styles = definitions.styles(["sd2-base", "sd2-large", "sd2-small", "resnet50", "toy"])
    assert list(styles) == ["resnet50", "toy", "sd2-base", "sd2-large", "sd2-small", HUMANS]
    assert styles[HUMANS].label == "people" and styles[HUMANS].colour == _rgb(165, 30, 55)
    assert (styles["sd2-base"].marker, styles["sd2-large"].marker) == ("s", "^")
    assert styles["sd2-base"].colour == styles["sd2-large"].colour == (0.12156862745098039, 0.4666666666666667,
                                                                       0.7058823529411765)
    assert (styles["sd2-base"].label, styles["sd2-base"].family) == ("SD 2 (base)", "Stable Diffusion")
    assert styles["sd2-small"].family == "sd2"  # not named: the family of its first word
    assert (styles["resnet50"].label, styles["resnet50"].colour) == ("ResNet-50", _rgb(230, 230, 230))
    assert (styles["toy"].colour, styles["toy"].marker) == ((0.0, 0.0, 0.0), "X")


def test_figures_use_the_definitions() -> None:
    summary = summarise(read_raw_data(FIXTURES))
    definitions = definitions_from_mapping({"families": {"toys": {"colour": [0, 128, 0], "label": "toys"}},
                                            "models": {"toy": {"family": "toys", "label": "Toy model"}}})
    figure = plot_shape_bias(summary, definitions=definitions)
    assert [t.get_text() for t in figure.legends[0].get_texts()] == ["Toy model (0.50)", "humans (0.70)"]
    toy = figure.axes[0].collections[0]
    assert tuple(toy.get_facecolor()[0][:3]) == pytest.approx(_rgb(0, 128, 0))


@pytest.mark.parametrize("text, message", [
    ("[models.x\n", "invalid TOML"),
    ("[colours]\n", r"unknown table\(s\) colours; known: humans, families, models"),
    ("[models.sd2]\nfamily = \"sd\"\n", r"models.sd2: unknown family 'sd'; define it under \[families.sd\]"),
    ("[models.sd2]\nlabel = \"SD 2\"\n", "models.sd2: a model needs a family"),
    ("[models.resnet50]\nfamily = \"supervised\"\ncolor = \"red\"\n", r"models.resnet50: unknown key\(s\) color"),
    ("[families.sd]\nlabel = \"SD\"\n", "families.sd: a new family needs a colour"),
    ("[families.sd]\ncolour = [300, 0, 0]\n", r"families.sd.colour: colour \[300, 0, 0\] is neither"),
    ("[families.sd]\ncolour = \"reddish\"\n", "families.sd.colour: colour 'reddish' is neither"),
    ("[humans]\nmarker = \"Q\"\n", "humans.marker: marker 'Q' is not one of the filled markers o s"),
    ("[humans]\nlabel = \"\"\n", "humans.label: must be a non-empty string"),
    ("models = 3\n", "models must be a table"),
    ("[models]\nsd2 = \"sd\"\n", "models.sd2: must be a table of colour, family, label, marker"),
    ("[models.a_b]\nfamily = \"clip\"\n[models.a-b]\nfamily = \"clip\"\n",
     r"models.a_b and models.a-b name the same model"),
    ("[models.toy]\nfamily = \"clip\"\ncolour = [165, 30, 55]\nmarker = \"D\"\n",
     "humans and toy have the same colour and marker"),
])
def test_bad_definitions_name_the_file_and_entry(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "plots.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as info:
        load_definitions(path)
    assert str(info.value).startswith(f"{path}: ") and "\n" not in str(info.value)


def test_report_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "plots.toml"
    path.write_text('[models.toy]\nfamily = "clip"\nlabel = "Toy"\n')
    assert main(["report", "--raw-data", str(FIXTURES), "--out", str(tmp_path / "r"), "--plot-definitions",
                 str(path), "--figures", "shape-bias"]) == 0
    assert sorted(p.name for p in (tmp_path / "r").glob("*.png")) == ["shape-bias-boxplot.png", "shape-bias.png"]
    assert "\n  Toy & " in (tmp_path / "r" / "benchmark_table_accuracy.tex").read_text()  # the LaTeX tables too
    path.write_text('[models.toy]\nfamily = "toys"\n')
    assert main(["report", "--raw-data", str(FIXTURES), "--out", str(tmp_path / "s"), "--plot-definitions",
                 str(path)]) == 2
    assert capsys.readouterr().err.strip().startswith(f"genfast report: error: {path}: models.toy: unknown family")
    assert not (tmp_path / "s").exists()  # the definitions are checked before anything is read or written
    missing = tmp_path / "none.toml"
    assert main(["report", "--raw-data", str(FIXTURES), "--out", str(tmp_path / "s"), "--plot-definitions",
                 str(missing)]) == 3
    assert capsys.readouterr().err.strip() == (f"genfast report: error: cannot use {missing}: No such file or "
                                               f"directory; check that it exists")
