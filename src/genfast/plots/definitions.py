"""Plotting definitions: each model's family, colour, marker and legend name, from one mapping the user can edit (a
TOML file or a Python dict), laid over the model-vs-human toolbox's own definitions of its models.

The mapping has three optional tables; every key is optional and merges over the definitions below it:

    [humans]                     # the pooled human subjects
    colour = [165, 30, 55]       # 0-255 RGB, or any matplotlib colour ("#a51e37", "tab:red")
    marker = "D"                 # one of MARKERS, matplotlib's filled markers ("o", "s", "^", "D", ...)
    label = "humans"             # the legend name

    [families.sd]                # a family: its colour, its first marker, its legend name
    colour = "#1f77b4"
    marker = "o"
    label = "Stable Diffusion"

    [models.sd2-base]            # a model ('_' and '-' in names are the same): its family, legend name, and
    family = "sd"                # optionally its own colour or marker
    label = "SD 2 base"

Models are coloured by family and told apart within a family by marker, in the order the definitions list them:
the family's marker first, then MARKERS; once a family has more models than markers, the colour steps to darker
(or, for dark colours, lighter) shades, so no two observers share a (colour, marker) pair. A model the
definitions do not name joins the family named by the first word of its name (up to the first '-' or '_'), made
with a colour of FAMILY_PALETTE (one no defined family has) when the definitions have no such family.
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

from matplotlib.colors import to_rgb

from genfast.metrics.benchmark import HUMANS

Colour = tuple[float, float, float]
MARKERS: tuple[str, ...] = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "p", "h", "d", "H", "8")
"""Filled markers, most distinct first: the markers of a family's models follow this order."""
FAMILY_PALETTE: tuple[str, ...] = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf",
    "#aec7e8", "#ffbb78", "#98df8a", "#c5b0d5", "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5")
"""Colours of families the definitions lack (tab20 without its reds and greys, the humans' and the toolbox's)."""
_SHADE_STEP = 0.3  # each further shade moves this fraction of the remaining way to black (or white)
_KEYS = {"humans": {"colour", "marker", "label"}, "families": {"colour", "marker", "label"},
         "models": {"family", "colour", "marker", "label"}}


@dataclass(frozen=True)
class Style:
    """How one observer is drawn, and the legend name and colour of its family."""

    colour: Colour
    marker: str
    label: str
    family: str
    family_colour: Colour | None = None  # None: the observer's own colour (the humans)
    partial: bool = False  # a model lacking a dataset, in a figure of means over datasets (see observer_styles)

    @property
    def legend_colour(self) -> Colour:
        """The colour of the observer's family in a family legend."""
        return self.colour if self.family_colour is None else self.family_colour


@dataclass(frozen=True)
class Family:
    """A family of models: drawn in one colour, its models told apart by marker."""

    colour: Colour
    marker: str
    label: str


@dataclass(frozen=True)
class ModelDefinition:
    """A model's family and legend name; colour and marker only where it overrides its family's."""

    family: str
    label: str | None = None
    colour: Colour | None = None
    marker: str | None = None


def model_key(name: str) -> str:
    """The name the definitions know a model by: '_' and '-' are the same (the toolbox's file names use '-')."""
    return name.replace("_", "-")


@dataclass(frozen=True)
class PlotDefinitions:
    """Families, models and the humans' look, in the order legends list them; `source` names where they came from."""

    humans: Style
    families: dict[str, Family]
    models: dict[str, ModelDefinition]
    source: str

    def family_of(self, model: str) -> str:
        """The family key of `model`: its definition's, or the first word of its name."""
        definition = self.models.get(model_key(model))
        return definition.family if definition is not None else re.split(r"[-_]", model)[0] or model

    def order(self, models: list[str]) -> list[str]:
        """`models` by family (defined families first, in their order), then as the definitions list them, then
        by name."""
        families = list(self.families)
        for model in sorted(models):
            if self.family_of(model) not in families:
                families.append(self.family_of(model))
        listed = list(self.models)

        def key(model: str) -> tuple[int, int, str]:
            position = listed.index(model_key(model)) if model_key(model) in self.models else len(listed)
            return families.index(self.family_of(model)), position, model

        return sorted(models, key=key)

    def styles(self, models: list[str]) -> dict[str, Style]:
        """A Style for each of `models` and for HUMANS, in legend order (see `order`; humans last); no two share a
        (colour, marker) pair."""
        ordered = self.order(models)
        taken = {(self.humans.colour, self.humans.marker)}
        fixed = {m for m in ordered if (d := self.models.get(model_key(m))) and d.colour and d.marker}
        taken |= {(self.models[model_key(m)].colour, self.models[model_key(m)].marker) for m in fixed}
        families = dict(self.families)
        used = {family.colour for family in families.values()}
        palette = itertools.cycle([c for c in FAMILY_PALETTE if to_rgb(c) not in used] or FAMILY_PALETTE)
        styles: dict[str, Style] = {}
        for family_key in dict.fromkeys(self.family_of(m) for m in ordered):
            if family_key not in families:
                families[family_key] = Family(to_rgb(next(palette)), MARKERS[0], family_key)
            family = families[family_key]
            members = [m for m in ordered if self.family_of(m) == family_key]
            definitions = [self.models.get(model_key(m), ModelDefinition(family_key)) for m in members]
            sequence = [family.marker, *(m for m in MARKERS if m != family.marker)]
            free = [m for m in sequence if m not in {d.marker for d in definitions}] or sequence
            automatic = 0
            for name, definition in zip(members, definitions):
                base = definition.colour or family.colour
                if definition.marker is not None:
                    marker, shade = definition.marker, 0
                else:
                    marker, shade = free[automatic % len(free)], automatic // len(free)
                    automatic += 1
                colour = base
                if name not in fixed:
                    colour = _shade(base, shade)
                    while (colour, marker) in taken:
                        shade += 1
                        colour = _shade(base, shade)
                    taken.add((colour, marker))
                styles[name] = Style(colour, marker, definition.label or name, family.label, family.colour)
        styles[HUMANS] = self.humans
        return styles


def _shade(colour: Colour, step: int) -> Colour:
    """`colour` moved `step` shades towards black (towards white for dark colours); step 0 is the colour itself."""
    if step == 0:
        return colour
    amount = 1 - (1 - _SHADE_STEP) ** step
    target = 1.0 if 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2] < 0.35 else 0.0
    return tuple(round(c + (target - c) * amount, 6) for c in colour)  # type: ignore[return-value]


def _colour(value: Any, where: str) -> Colour:
    if isinstance(value, (list, tuple)) and len(value) == 3 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 255 for v in value):
        return tuple(round(v / 255, 6) for v in value)  # type: ignore[return-value]
    if isinstance(value, str):
        try:
            return to_rgb(value)
        except ValueError:
            pass
    raise ValueError(f"{where}: colour {value!r} is neither [r, g, b] with values 0-255 nor a matplotlib colour "
                     f"such as '#a51e37'")


def _marker(value: Any, where: str) -> str:
    if value not in MARKERS:
        raise ValueError(f"{where}: marker {value!r} is not one of the filled markers {' '.join(MARKERS)}")
    return value


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}: must be a non-empty string, got {value!r}")
    return value


def _table(mapping: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = mapping.get(key, {})
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: {key} must be a table, got {value!r}")
    return value


def _fields(entry: Any, section: str, where: str) -> dict[str, Any]:
    """An entry's fields, parsed (colour, marker, label, family); ValueError for a key the section lacks."""
    if not isinstance(entry, Mapping):
        raise ValueError(f"{where}: must be a table of {', '.join(sorted(_KEYS[section]))}, got {entry!r}")
    unknown = sorted(set(entry) - _KEYS[section])
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(_KEYS[section]))}")
    parse = {"colour": _colour, "marker": _marker, "label": _text, "family": _text}
    return {key: parse[key](value, f"{where}.{key}") for key, value in entry.items()}


def definitions_from_mapping(mapping: Mapping[str, Any], base: PlotDefinitions | None = None,
                             source: str = "plot definitions") -> PlotDefinitions:
    """`mapping` (the format of the module docstring) laid over `base` (None: the toolbox's definitions);
    ValueError naming `source` and the entry for anything malformed."""
    base = TOOLBOX_DEFINITIONS if base is None else base
    unknown = sorted(set(mapping) - set(_KEYS))
    if unknown:
        raise ValueError(f"{source}: unknown table(s) {', '.join(unknown)}; known: humans, families, models")
    humans = replace(base.humans, **_fields(mapping.get("humans", {}), "humans", f"{source}: humans"))
    families = dict(base.families)
    for key, entry in _table(mapping, "families", source).items():
        fields = _fields(entry, "families", f"{source}: families.{key}")
        if key in families:
            families[key] = replace(families[key], **fields)
        elif "colour" not in fields:
            raise ValueError(f"{source}: families.{key}: a new family needs a colour")
        else:
            families[key] = Family(fields["colour"], fields.get("marker", MARKERS[0]), fields.get("label", key))
    models = dict(base.models)
    seen: dict[str, str] = {}
    for name, entry in _table(mapping, "models", source).items():
        key = model_key(name)
        if key in seen:
            raise ValueError(f"{source}: models.{seen[key]} and models.{name} name the same model ('_' is '-')")
        seen[key] = name
        fields = _fields(entry, "models", f"{source}: models.{name}")
        if key not in models and "family" not in fields:
            raise ValueError(f"{source}: models.{name}: a model needs a family (one of {', '.join(families)})")
        models[key] = replace(models[key], **fields) if key in models else ModelDefinition(**fields)
        if models[key].family not in families:
            raise ValueError(f"{source}: models.{name}: unknown family {models[key].family!r}; define it under "
                             f"[families.{models[key].family}] or use one of {', '.join(families)}")
    looks: dict[tuple[Colour, str], str] = {(humans.colour, humans.marker): "humans"}
    for key, model in models.items():
        if model.colour is not None and model.marker is not None:
            other = looks.setdefault((model.colour, model.marker), key)
            if other != key:
                raise ValueError(f"{source}: {other} and {key} have the same colour and marker; change one")
    return PlotDefinitions(humans, families, models, source)


def load_definitions(path: str | Path) -> PlotDefinitions:
    """The definitions of the TOML file `path` laid over the toolbox's; ValueError naming the file if it is not
    valid TOML or not in the format of the module docstring."""
    path = Path(path)
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        raise ValueError(f"{path}: reading TOML needs Python 3.11 or later (tomllib); on 3.10 pass a mapping to "
                         f"definitions_from_mapping") from None
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not a UTF-8 text file ({exc.reason})") from None
    try:
        mapping = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: invalid TOML: {exc}") from None
    return definitions_from_mapping(mapping, source=str(path))


# The toolbox's definitions of its models (modelvshuman/plotting/decision_makers.py, get_comparison_decision_makers,
# and its colours.py), as a mapping of the format above: one family per colour the toolbox gives a group of
# models; the adversarially robust ResNet-50s keep their own shades of blue.
_TORCHVISION = ("alexnet", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn", "squeezenet1_0", "squeezenet1_1",
                "densenet121", "densenet169", "densenet201", "inception_v3", "resnet18", "resnet34", "resnet50",
                "resnet101", "resnet152", "shufflenet_v2_x0_5", "mobilenet_v2", "resnext50_32x4d",
                "resnext101_32x8d", "wide_resnet50_2", "wide_resnet101_2", "mnasnet0_5", "mnasnet1_0")
TOOLBOX: dict[str, Any] = {
    "humans": {"colour": [165, 30, 55], "marker": "D", "label": "humans"},
    "families": {
        "supervised": {"colour": [230, 230, 230], "marker": "o", "label": "supervised (ImageNet)"},
        "self-supervised": {"colour": [215, 180, 105], "marker": "o", "label": "self-supervised"},
        "adversarially-robust": {"colour": [0, 105, 170], "marker": "o", "label": "adversarially robust"},
        "vit": {"colour": [144, 159, 110], "marker": "v", "label": "vision transformers"},
        "clip": {"colour": [145, 105, 70], "marker": "v", "label": "CLIP (400M)"},
        "swsl": {"colour": [175, 110, 150], "marker": "o", "label": "SWSL (940M)"},
        "bit-m": {"colour": [153, 142, 195], "marker": "o", "label": "BiT-M (14M)"},
        "vit-14m": {"colour": [50, 110, 30], "marker": "v", "label": "ViT (14M)"},
        "noisy-student": {"colour": [50, 65, 75], "marker": "o", "label": "Noisy Student (300M)"},
    },
    "models": {
        **{name: {"family": "supervised"} for name in _TORCHVISION},
        **{name: {"family": "self-supervised", "label": f"{name}: ResNet-50"}
           for name in ("InsDis", "MoCo", "PIRL", "MoCoV2", "InfoMin")},
        **{f"simclr_resnet50x{w}": {"family": "self-supervised", "label": f"SimCLR: ResNet-50x{w}"}
           for w in (1, 2, 4)},
        **{f"resnet50_l2_eps{eps}": {"family": "adversarially-robust", "colour": colour,
                                     "label": f"ResNet-50 L2 eps {label}"}
           for eps, label, colour in (("0", "0.0", [196, 205, 229]), ("0_5", "0.5", [176, 190, 220]),
                                      ("1", "1.0", [134, 159, 203]), ("3", "3.0", [86, 130, 186]),
                                      ("5", "5.0", [0, 105, 170]))},
        **{f"vit_{size}_patch16_224": {"family": "vit", "label": f"ViT-{size[0].upper()}"}
           for size in ("small", "base", "large")},
        "clip": {"family": "clip", "label": "CLIP: ViT-B (400M)"},
        "ResNeXt101_32x16d_swsl": {"family": "swsl", "label": "SWSL: ResNeXt-101 (940M)"},
        "resnet50_swsl": {"family": "swsl", "label": "SWSL: ResNet-50 (940M)"},
        **{f"BiTM_resnetv2_{size}": {"family": "bit-m", "label": f"BiT-M: ResNet-{size} (14M)"}
           for size in ("152x4", "152x2", "101x3", "101x1", "50x3", "50x1")},
        "transformer_L16_IN21K": {"family": "vit-14m", "label": "ViT-L (14M)"},
        "transformer_B16_IN21K": {"family": "vit-14m", "label": "ViT-B (14M)"},
        "efficientnet_l2_noisy_student_475": {"family": "noisy-student", "label": "Noisy Student: ENetL2 (300M)"},
    },
}
"""The toolbox's definitions in the mapping format (for reference or as a start of one's own file)."""
_EMPTY = PlotDefinitions(Style((0.0, 0.0, 0.0), "D", "humans", "humans"), {}, {}, "")
TOOLBOX_DEFINITIONS: PlotDefinitions = definitions_from_mapping(TOOLBOX, base=_EMPTY,
                                                                source="the toolbox's plot definitions")
"""TOOLBOX as PlotDefinitions: the default of every figure."""
