"""What genfast was built with and what can run here, with the reason for anything that cannot.

``python -m genfast.info`` prints it; ``--json`` prints the same facts as JSON; :func:`collect` returns them.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import sys
from typing import Any, Sequence

import torch

import genfast
from genfast import _native


def _native_facts() -> dict[str, Any]:
    if not _native.available():
        return {"loaded": False, "reason": _native.LOAD_ERROR, "build_info": None}
    return {"loaded": True, "reason": None, "build_info": dict(_native.native().build_info)}


def _cuda_kernel_facts(native_loaded: bool) -> dict[str, Any]:
    if not native_loaded:
        return {"compiled": False, "device_count": 0, "usable": False, "reason": "the native core did not load"}
    module = _native.native()
    count, reason = module.cuda_status()
    compiled = bool(module.build_info["with_cuda"])
    usable = compiled and count > 0
    return {"compiled": compiled, "device_count": int(count), "usable": usable, "reason": reason or None}


def _torch_cuda_facts() -> dict[str, Any]:
    available = torch.cuda.is_available()
    devices = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if available else []
    reason = None
    if not available:
        reason = "torch was built without CUDA" if torch.version.cuda is None else "torch finds no usable CUDA device"
    return {"available": available, "torch_cuda_version": torch.version.cuda, "devices": devices, "reason": reason}


def _triton_facts(gpu: bool) -> dict[str, Any]:
    interpret = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")
    try:
        triton = importlib.import_module("triton")
    except Exception as exc:  # any import failure means the kernels cannot run; say why
        return {"importable": False, "version": None, "gpu": gpu, "interpret": interpret, "usable": False,
                "reason": f"triton does not import ({type(exc).__name__}: {exc})"}
    usable = gpu or interpret
    reason = None if usable else "no GPU for triton and TRITON_INTERPRET is not set; set it to 1 to run on CPU"
    return {"importable": True, "version": getattr(triton, "__version__", None), "gpu": gpu, "interpret": interpret,
            "usable": usable, "reason": reason}


def _xformers_facts() -> dict[str, Any]:
    if importlib.util.find_spec("xformers") is None:
        return {"installed": False, "version": None, "reason": "xformers is not installed (optional)"}
    try:
        version = importlib.metadata.version("xformers")
    except importlib.metadata.PackageNotFoundError:
        version = None
    return {"installed": True, "version": version, "reason": None}


def _unet_forward_facts() -> dict[str, Any]:
    try:
        import diffusers

        from genfast.models.unet import FAST_FORWARD_DIFFUSERS, fast_forward_blocker
    except Exception as exc:  # noqa: BLE001 - report, never raise
        return {"usable": False, "diffusers_version": None, "follows": None, "reason": f"{type(exc).__name__}: {exc}"}
    reason = fast_forward_blocker()
    return {"usable": reason is None, "diffusers_version": diffusers.__version__, "follows": list(FAST_FORWARD_DIFFUSERS),
            "reason": reason}


def _triton_op_facts(triton: dict[str, Any]) -> dict[str, Any]:
    from genfast import kernels

    if not triton["usable"]:
        return {"registered": [], "reason": triton["reason"]}
    try:
        return {"registered": [op._qualified_op_name for op in kernels.ops()], "reason": None}
    except Exception as exc:  # noqa: BLE001
        return {"registered": [], "reason": f"{type(exc).__name__}: {exc}"}


def collect() -> dict[str, Any]:
    """All the facts ``python -m genfast.info`` prints, as a JSON-serialisable dict."""
    native = _native_facts()
    torch_cuda = _torch_cuda_facts()
    return {
        "genfast_version": genfast.__version__,
        "python": platform.python_version(),
        "torch_version": torch.__version__,
        "native": native,
        "native_cpu_kernels": {"usable": native["loaded"], "reason": native["reason"]},
        "cuda_kernels": _cuda_kernel_facts(native["loaded"]),
        "torch_cuda": torch_cuda,
        "triton": (triton := _triton_facts(torch_cuda["available"])),
        "triton_ops": _triton_op_facts(triton),
        "unet_fast_forward": _unet_forward_facts(),
        "xformers": _xformers_facts(),
    }


def _yes_no(ok: bool, reason: str | None) -> str:
    return "yes" if ok else f"no ({reason})" if reason else "no"


def format_report(facts: dict[str, Any]) -> str:
    """The human-readable report of :func:`collect`'s facts."""
    native, cuda, tcuda, triton, xf = (facts[k] for k in ("native", "cuda_kernels", "torch_cuda", "triton", "xformers"))
    lines = [
        f"genfast {facts['genfast_version']} (python {facts['python']}, torch {facts['torch_version']})",
        f"native core loaded:   {_yes_no(native['loaded'], native['reason'])}",
    ]
    if native["build_info"]:
        b = native["build_info"]
        lines += [
            f"  built version:      {b.get('version')} ({b.get('build_type')})",
            f"  C++ compiler:       {b.get('cxx_compiler')}",
            f"  with CUDA:          {b.get('with_cuda')}"
            + (f" (archs {b.get('cuda_archs')}, {b.get('cuda_compiler')})" if b.get("with_cuda") else ""),
        ]
    lines += [
        f"native CPU kernels:   {_yes_no(facts['native_cpu_kernels']['usable'], facts['native_cpu_kernels']['reason'])}"
        + ("" if facts["native_cpu_kernels"]["usable"] else "; the ops use their PyTorch references"),
        f"native CUDA kernels:  {_yes_no(cuda['usable'], cuda['reason'])}"
        + (f" [{cuda['device_count']} device(s)]" if cuda["usable"] else ""),
        f"torch CUDA:           {_yes_no(tcuda['available'], tcuda['reason'])}"
        + (f" {', '.join(tcuda['devices'])}" if tcuda["devices"] else ""),
        f"triton:               {_yes_no(triton['usable'], triton['reason'])}"
        + (f" [version {triton['version']}, gpu={triton['gpu']}, TRITON_INTERPRET={int(triton['interpret'])}]"
           if triton["importable"] else ""),
        f"triton ops:           {_yes_no(bool(facts['triton_ops']['registered']), facts['triton_ops']['reason'])}"
        + (f" [{', '.join(facts['triton_ops']['registered'])}]" if facts["triton_ops"]["registered"] else ""),
        f"UNet fast forward:    {_yes_no(facts['unet_fast_forward']['usable'], facts['unet_fast_forward']['reason'])}"
        + (f" [diffusers {facts['unet_fast_forward']['diffusers_version']}]"
           if facts["unet_fast_forward"]["usable"] else ""),
        f"xformers:             {_yes_no(xf['installed'], xf['reason'])}"
        + (f" [version {xf['version']}]" if xf["installed"] else ""),
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m genfast.info``."""
    parser = argparse.ArgumentParser(prog="python -m genfast.info", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the facts as JSON")
    args = parser.parse_args(argv)
    facts = collect()
    print(json.dumps(facts, indent=2) if args.json else format_report(facts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
