"""The package as installed: what `import genfast` loads, and the README's commands run as a user runs them,
as subprocesses from a neutral folder against the genfast this test imports (the installed one in CI)."""
from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import genfast

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def environment(tmp_path: Path) -> dict[str, str]:
    """The caller's environment with `python`, `genfast` and `torchrun` on PATH as this interpreter and its
    genfast and torch."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    script = Path(sys.executable).with_name("genfast")
    if not script.exists():
        try:
            importlib.metadata.distribution("genfast")
        except importlib.metadata.PackageNotFoundError:  # an in-tree run (PYTHONPATH=src): stand in for it
            (bin_dir / "genfast").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m genfast.cli "$@"\n')
        else:
            raise AssertionError(f"genfast is installed but its console script is not at {script}")
    if not Path(sys.executable).with_name("torchrun").exists():  # torch's launcher, as the interpreter runs it
        (bin_dir / "torchrun").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m torch.distributed.run "$@"\n')
    for shim in bin_dir.iterdir():
        shim.chmod(0o755)
    paths = [os.path.abspath(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {**os.environ, "PATH": os.pathsep.join([str(bin_dir), str(script.parent), os.environ["PATH"]]),
            "PYTHONPATH": os.pathsep.join(paths), "GENFAST_TESTING": ""}


def run(command: str, cwd: Path, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", command], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def readme_block(heading: str) -> str:
    """The first ```bash block after `heading` in the README."""
    start = README.index("```bash\n", README.index(heading)) + len("```bash\n")
    return README[start:README.index("```\n", start)]


def loaded_modules(code: str, env: dict[str, str], cwd: Path) -> set[str]:
    out = subprocess.run([sys.executable, "-c", f"{code}; import sys, json; print(json.dumps(sorted(sys.modules)))"],
                         env=env, cwd=cwd, capture_output=True, text=True, check=True, timeout=300).stdout
    return set(json.loads(out))


def test_import_genfast_loads_no_evaluation_harness(tmp_path):
    env = environment(tmp_path)
    with_torch = loaded_modules("import torch", env, tmp_path)  # torch itself imports tqdm
    with_genfast = loaded_modules("import genfast; genfast.Classifier, genfast.methods", env, tmp_path)
    ours = {m for m in with_genfast if m.split(".")[0] == "genfast"}
    for part in ("genfast.evaluate", "genfast.metrics", "genfast.plots", "genfast.distort", "genfast.cli",
                 "genfast.testing", "genfast.demo"):
        assert not {m for m in ours if m == part or m.startswith(part + ".")}, part
    assert "genfast.vocabulary" in ours
    added = with_genfast - with_torch
    assert not {m for m in added if m.split(".")[0] in ("tqdm", "matplotlib", "pandas")}, sorted(added)


def test_import_genfast_and_its_command_load_no_torch(tmp_path):
    """The public names load on first use, so that the command installs its signal handlers within milliseconds."""
    loaded = loaded_modules("import genfast, genfast.cli", environment(tmp_path), tmp_path)
    assert "torch" not in loaded and "numpy" not in loaded
    assert {"Classifier", "classify", "methods", "noise", "token_masks"} <= set(dir(genfast))
    with pytest.raises(AttributeError, match="no attribute 'Clasifier'"):
        genfast.Clasifier


def test_the_child_imports_the_same_genfast_from_a_neutral_folder(tmp_path):
    done = run('python -c "import genfast; print(genfast.__file__)"', tmp_path, environment(tmp_path))
    assert done.stdout.strip() == genfast.__file__


@pytest.mark.slow
def test_readme_commands(tmp_path):
    env = environment(tmp_path)
    assert "genfast demo" in README and "python -m genfast.info" in README
    assert "exit codes:" in run("genfast --help", tmp_path, env).stdout
    assert "genfast" in run("python -m genfast.info", tmp_path, env).stdout
    run("genfast demo --limit 3 --li-every 3 --threads 1 --out demo", tmp_path, env)  # README: `genfast demo`
    assert json.loads((tmp_path / "demo" / "demo_summary.json").read_text())["runs"][0]["images"] == 3

    block = readme_block("### Try it on the bundled model")
    run(block, tmp_path, env)
    csv = (tmp_path / "runs/digits/raw-data/contrast/contrast_digits_session-1.csv").read_text().splitlines()
    assert csv[0] == "subj,session,trial,rt,object_response,category,condition,imagename" and len(csv) == 21
    assert "digits" in json.loads((tmp_path / "runs/digits/metrics.json").read_text())["observers"]
    assert (tmp_path / "runs/digits/report/summary.md").is_file()
    run(readme_block("### More than one GPU"), tmp_path, env)  # torchrun on 2 CPU ranks, the same CSV (cmp)
    assert list((tmp_path / "runs/digits-2/journal/contrast").glob("*.rank-1.jsonl"))


@pytest.mark.slow
def test_readme_explain(tmp_path):
    run(readme_block("## Why a class won"), tmp_path, environment(tmp_path))
    assert {p.name for p in (tmp_path / "explain").iterdir()} == {"digit_explain.png", "digit_explain.pdf",
                                                                  "digit_explain.json"}
    assert json.loads((tmp_path / "explain" / "digit_explain.json").read_text())["winner"] == "7"


@pytest.mark.slow
def test_readme_example_script(tmp_path):
    """`python examples/digits_robustness.py` as the README runs it (a path to the script, so its folder is on
    sys.path for digits_cnn), with small settings."""
    assert "python examples/digits_robustness.py" in README
    example = ROOT / "examples" / "digits_robustness.py"
    run(f"python {example} --out figures --limit 4 --samples 2 --cnn-steps 5 --distortions contrast",
        tmp_path, environment(tmp_path))
    assert {p.name for p in (tmp_path / "figures").iterdir()} >= {"digits_robustness.png", "digits_robustness.md"}
