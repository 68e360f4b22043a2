"""genfast.info: the facts it collects, its report, and (in CI) that the native core really loaded."""
from __future__ import annotations

import json
import os

import pytest

from genfast import _native, info


def test_collect_reports_every_part_with_reasons():
    facts = info.collect()
    assert facts["native"]["loaded"] == _native.available()
    for part in ("native_cpu_kernels", "cuda_kernels", "triton"):
        assert facts[part]["usable"] or facts[part]["reason"], f"{part} unusable without a reason"
    assert facts["xformers"]["installed"] or facts["xformers"]["reason"]
    if facts["native"]["loaded"]:
        build = facts["native"]["build_info"]
        assert {"version", "with_cuda", "cuda_archs", "cxx_compiler"} <= set(build)
        assert facts["cuda_kernels"]["compiled"] == build["with_cuda"]
    json.dumps(facts)  # serialisable


def test_triton_interpreter_flag_follows_environment(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert info.collect()["triton"]["interpret"] is True
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    assert info.collect()["triton"]["interpret"] is False


def test_main_prints_report_and_json(capsys):
    assert info.main([]) == 0
    text = capsys.readouterr().out
    assert "native core loaded" in text and "triton" in text
    assert info.main(["--json"]) == 0
    assert json.loads(capsys.readouterr().out)["genfast_version"] == info.genfast.__version__


def test_native_core_loaded_when_required():
    """CI sets GENFAST_REQUIRE_NATIVE=1 so that it can never silently test only the PyTorch fallback."""
    if os.environ.get("GENFAST_REQUIRE_NATIVE") != "1":
        pytest.skip("GENFAST_REQUIRE_NATIVE is not set to 1")
    assert _native.available(), _native.LOAD_ERROR
