"""Every model family classifies a folder of images through `genfast evaluate`, from a local folder built by
its tiny-model builder; adapter options come through --model-option and are part of the resume settings."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genfast.cli import main

FAMILIES = {
    # family: (builder module, builder, --model-option values)
    "sdxl": ("genfast.testing.sdxl", "make_tiny_sdxl_pipeline", []),
    "sd3": ("genfast.testing.sd3", "make_tiny_sd3_pipeline", []),
    "flux": ("genfast.testing.flux", "make_tiny_flux_pipeline", ["resolution=16"]),
    "deepfloyd-if": ("genfast.testing.deepfloyd_if", "make_tiny_if_pipeline", ["clean_caption=False"]),
    "amused": ("genfast.testing.amused", "make_tiny_amused_pipeline", []),
    "janus": ("genfast.testing.janus", "make_tiny_janus_model", []),
}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    for name in ("cat", "dog"):
        (root / name).mkdir()
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(root / name / "0.png")
    return root


@pytest.mark.parametrize("family", list(FAMILIES))
def test_family_classifies_through_the_command_line(family, data, tmp_path, capsys):
    from importlib import import_module

    module, builder, options = FAMILIES[family]
    model = getattr(import_module(module), builder)(tmp_path / family)
    command = ["evaluate", "--model", str(model), "--data", str(data), "--classes", "cat,dog", "--out",
               str(tmp_path / "run"), "--method", "exhaustive:n_samples=2", "--no-progress"]
    command += [arg for option in options for arg in ("--model-option", option)]
    assert main(command) == 0
    rows = [row for path in (tmp_path / "run" / "raw-data").rglob("*.csv") for row in csv.DictReader(path.open())]
    assert len(rows) == 2 and {row["object_response"] for row in rows} <= {"cat", "dog"}
    capsys.readouterr()
    # the adapter options are part of the settings: another value does not continue this run
    assert main(command + ["--model-option", "resolution=64"]) == 2
    assert "model_options" in capsys.readouterr().err
