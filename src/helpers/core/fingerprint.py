"""The environment fingerprint: what machine and software stack produced a result.

`fingerprint()` returns a JSON-serialisable dict; `write_environment()` saves it as
results/environment.json; `machine()` picks what identifies the machine (with a short hash)
and `machine_label()`, `cpu_isa_summary()` and `short_caption()` turn it into the one-liners
printed under every figure and in the report. Nothing here may crash on an unusual machine:
anything that cannot be found is recorded as None.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from helpers.core.paths import ROOT
from helpers.core.paths import ROOT as REPO_ROOT

# CPU features that decide which GEMM kernels the libraries can use.
FLAGS_OF_INTEREST = (
    "avx2",
    "avx512f",
    "avx512_vnni",
    "avx512_bf16",
    "avx_vnni",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
    "fma",
)

PACKAGES = (
    "torch",
    "transformers",
    "optimum",
    "optimum-onnx",
    "onnx",
    "onnxruntime",
    "onnxscript",
    "sentence-transformers",
    "numpy",
    "pandas",
    "matplotlib",
    "papermill",
)

# Distributions that all install the `onnxruntime` module.
ORT_DISTRIBUTIONS = (
    "onnxruntime",
    "onnxruntime-gpu",
    "onnxruntime-openvino",
    "onnxruntime-directml",
    "onnxruntime-training",
)


def _run(cmd: list[str], cwd: Path | None = None, timeout: float = 10.0) -> str | None:
    """stdout of a command, or None if it is missing, fails or hangs."""
    if shutil.which(cmd[0]) is None:
        return None
    try:
        out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def _norm(flag: str) -> str:
    # Linux says avx512_vnni, macOS sysctl says AVX512VNNI.
    return flag.lower().replace("_", "").replace(".", "")


def _flags_of_interest(flags: set[str] | None) -> dict[str, bool | None]:
    if flags is None:
        return {f: None for f in FLAGS_OF_INTEREST}
    have = {_norm(f) for f in flags}
    return {f: _norm(f) in have for f in FLAGS_OF_INTEREST}


def parse_cpuinfo(text: str) -> dict:
    """Model, vendor and flags of interest from the text of /proc/cpuinfo (first CPU)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:  # end of the first processor block
                break
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip().lower(), value.strip())
    # x86 has "flags", ARM has "Features".
    raw = fields.get("flags", fields.get("features"))
    flags = set(raw.split()) if raw is not None else None
    return {
        "model": fields.get("model name") or fields.get("hardware") or fields.get("cpu model"),
        "vendor": fields.get("vendor_id") or fields.get("cpu implementer"),
        # family/model/stepping identify the microarchitecture when the name is masked (VMs)
        "family": fields.get("cpu family"),
        "model_number": fields.get("model"),
        "stepping": fields.get("stepping"),
        "flags": _flags_of_interest(flags),
    }


def _cpu_from_os() -> dict:
    """parse_cpuinfo's result, from /proc/cpuinfo or the OS's own tools."""
    try:
        return parse_cpuinfo(Path("/proc/cpuinfo").read_text())
    except OSError:
        pass
    model, vendor, flags = platform.processor() or None, None, None
    if sys.platform == "darwin":
        model = (_run(["sysctl", "-n", "machdep.cpu.brand_string"]) or "").strip() or model
        vendor = (_run(["sysctl", "-n", "machdep.cpu.vendor"]) or "").strip() or None
        feats = _run(["sysctl", "-n", "machdep.cpu.features", "machdep.cpu.leaf7_features"])
        flags = set(feats.split()) if feats else None
    return {
        "model": model,
        "vendor": vendor,
        "family": None,
        "model_number": None,
        "stepping": None,
        "flags": _flags_of_interest(flags),
    }


def cpu_info() -> dict:
    """CPU model, vendor, architecture, flags of interest, cores and default threads."""
    import psutil

    info = _cpu_from_os()
    info["architecture"] = platform.machine()
    info["physical_cores"] = psutil.cpu_count(logical=False)
    info["logical_cores"] = psutil.cpu_count(logical=True)
    info["torch_threads"] = _torch_threads()
    # ORT sizes its default intra-op pool to the physical cores; asking ORT is not cheap.
    info["onnxruntime_default_threads"] = info["physical_cores"]
    return info


def _torch_threads() -> int | None:
    try:
        import torch
    except ImportError:
        return None
    return torch.get_num_threads()


def _nvidia_smi() -> list[dict]:
    out = _run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader,nounits"])
    gpus = []
    for line in (out or "").strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 3:
            continue
        try:
            mem = round(float(parts[1]) / 1024, 2)  # MiB -> GiB
        except ValueError:
            mem = None
        gpus.append({"name": parts[0], "memory_gib": mem, "driver": parts[2]})
    return gpus


def gpu_info() -> list[dict]:
    """One entry per GPU: name, memory_gib, driver, cuda (toolkit torch was built with)."""
    smi = _nvidia_smi()
    try:
        import torch

        cuda_ok = torch.cuda.is_available()
    except Exception:  # a broken CUDA install must not break the fingerprint
        cuda_ok = False
    if not cuda_ok:
        return [dict(g, cuda=None, capability=None, source="nvidia-smi") for g in smi]
    gpus = []
    for i in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(i)
        gpus.append(
            {
                "name": props.name,
                "memory_gib": round(props.total_memory / 2**30, 2),
                "driver": smi[i]["driver"] if i < len(smi) else None,
                "cuda": torch.version.cuda,
                "capability": f"{props.major}.{props.minor}",
                "source": "torch.cuda",
            }
        )
    return gpus


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def package_versions() -> dict[str, str | None]:
    versions = {p: _version(p) for p in PACKAGES}
    # onnxruntime-gpu & co. provide the same module under another distribution name.
    for dist in ORT_DISTRIBUTIONS:
        versions["onnxruntime"] = versions["onnxruntime"] or _version(dist)
    return versions


def onnxruntime_info() -> dict:
    """Which distribution provides `onnxruntime`, and its available providers."""
    dists = [d for d in ORT_DISTRIBUTIONS if _version(d) is not None]
    try:
        import onnxruntime as ort

        providers = ort.get_available_providers()
    except Exception:
        providers = []
    return {"distribution": dists[0] if len(dists) == 1 else (dists or None), "providers": providers}


def torch_backends() -> dict:
    try:
        import torch
    except ImportError:
        return {}
    info = {
        "mkldnn_available": torch.backends.mkldnn.is_available(),
        "mkl_available": torch.backends.mkl.is_available(),
        "openmp_available": torch.backends.openmp.is_available(),
        "cpu_capability": None,
        "parallel_info": [line.strip() for line in torch.__config__.parallel_info().splitlines() if line.strip()],
    }
    try:  # torch >= 2.1
        info["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    except AttributeError:
        pass
    return info


def git_info(root: Path = REPO_ROOT) -> dict:
    """Commit and dirty flag of the checkout holding this package (None if not one). Changes
    under reference/ do not count: a reference built in parts writes there while it runs."""
    if not (root / ".git").exists():  # not an enclosing repository, e.g. site-packages
        return {"commit": None, "dirty": None}
    commit = _run(["git", "rev-parse", "HEAD"], cwd=root)
    status = _run(["git", "status", "--porcelain", "--", ".", ":(exclude)reference"], cwd=root)
    return {"commit": commit.strip() if commit else None, "dirty": bool(status.strip()) if status is not None else None}


def _project_relative(path: str) -> str:
    """A path inside the project as seen from its root (.venv/bin/python), else as it is."""

    p = Path(path)
    return p.relative_to(ROOT).as_posix() if p.is_relative_to(ROOT) else path


def fingerprint(profile: str | None = None) -> dict:
    """Everything needed to say what produced a result, as a JSON-serialisable dict."""
    import psutil

    fp = {
        "host": socket.gethostname(),
        "cpu": cpu_info(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 2),
        "gpu": gpu_info(),
        "os": {"platform": platform.platform(), "system": platform.system(), "kernel": platform.release()},
        "python": {"version": platform.python_version(), "executable": _project_relative(sys.executable)},
        "packages": package_versions(),
        "onnxruntime": onnxruntime_info(),
        "torch_backends": torch_backends(),
        "git": git_info(),
        "env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "CUDA_VISIBLE_DEVICES")},
        "profile": profile,
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    fp["machine"] = machine(fp)
    return fp


# Microarchitecture from (vendor, family, model) for CPUs whose name a VM masks ("AMD EPYC").
# AMD family 25 is Zen 3 (models 0x00-0x0f, 0x20-0x5f) or Zen 4 (0x10-0x1f, 0x60-0xaf); 26 is Zen 5.
def microarchitecture(vendor: str | None, family, model) -> str | None:
    try:
        family, model = int(family), int(model)
    except (TypeError, ValueError):
        return None
    if vendor == "AuthenticAMD":
        if family == 23:
            return "Zen 2" if model >= 0x30 else "Zen/Zen+"
        if family == 25:
            return "Zen 4" if 0x10 <= model <= 0x1F or 0x60 <= model <= 0xAF else "Zen 3"
        if family == 26:
            return "Zen 5"
    if vendor == "GenuineIntel" and family == 6:
        return {
            85: "Skylake/Cascade Lake",
            106: "Ice Lake",
            143: "Sapphire Rapids",
            207: "Emerald Rapids",
            173: "Granite Rapids",
            151: "Alder Lake",
            183: "Raptor Lake",
        }.get(model)
    return None


def machine(fp: dict) -> dict:
    """What identifies the machine of a run: host, CPU, cores, memory, GPUs, and a short hash
    of them, so that two machines called alike (every VM is `vm`) are still told apart."""
    cpu = fp.get("cpu") or {}
    facts = {
        "host": fp.get("host"),
        "cpu_model": cpu.get("model"),
        "microarchitecture": microarchitecture(cpu.get("vendor"), cpu.get("family"), cpu.get("model_number")),
        "cpu_id": "/".join(str(cpu.get(k)) for k in ("family", "model_number", "stepping")),
        "cores": cpu.get("logical_cores"),
        "memory_gib": round(fp.get("memory_gib") or 0),
        "gpu": [g.get("name") for g in fp.get("gpu") or []],
    }
    digest = hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:8]
    return {**facts, "fingerprint": digest}


def machine_label(m: dict) -> str:
    """e.g. "AMD EPYC (Zen 4) · 2 cores · 24 GiB · no GPU · #1a2b3c4d"."""
    cpu = m.get("cpu_model") or "unknown CPU"
    if m.get("microarchitecture") and m["microarchitecture"] not in cpu:
        cpu += f" ({m['microarchitecture']})"
    gpu = ", ".join(m.get("gpu") or []) or "no GPU"
    return f"{cpu} · {m.get('cores')} cores · {m.get('memory_gib')} GiB · {gpu} · #{m.get('fingerprint')}"


def write_environment(path, profile: str | None = None) -> dict:
    """Write the fingerprint as indented JSON to `path` and return it."""
    fp = fingerprint(profile=profile)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(fp, indent=2, default=str) + "\n")
    return fp


def cpu_isa_summary(fp: dict) -> str:
    """e.g. "AMD EPYC 9xxx · AVX-512 · VNNI · BF16 · no AMX" (x86 only lists the ISA)."""
    cpu = fp.get("cpu", {})
    flags = cpu.get("flags") or {}
    parts = [cpu.get("model") or cpu.get("architecture") or "unknown CPU"]
    if not any(v is not None for v in flags.values()):
        return " · ".join(parts + [cpu.get("architecture") or "ISA unknown"])
    if flags.get("avx512f"):
        parts.append("AVX-512")
    elif flags.get("avx2"):
        parts.append("AVX2")
    else:
        parts.append("no AVX2")
    if flags.get("avx512_vnni") or flags.get("avx_vnni"):
        parts.append("VNNI")
    if flags.get("avx512_bf16") or flags.get("amx_bf16"):
        parts.append("BF16")
    parts.append("AMX" if flags.get("amx_tile") else "no AMX")
    return " · ".join(parts)


def short_caption(fp: dict, run_id: str | None = None) -> str:
    """e.g. "AMD EPYC (Zen 4) · 2 cores · 24 GiB · no GPU · #1a2b3c4d · 2 threads · torch 2.13.0 ·
    ort 1.31.1 · run 20261122T...", for under figures."""
    cpu, pkgs = fp.get("cpu", {}), fp.get("packages", {})
    parts = [
        machine_label(fp.get("machine") or machine(fp)),
        f"{cpu.get('torch_threads')} threads",
        f"torch {pkgs.get('torch')}",
        f"ort {pkgs.get('onnxruntime')}",
    ]
    return " · ".join(parts + ([f"run {run_id}"] if run_id else []))


def summary(fp: dict) -> dict:
    """The fingerprint's headline facts as a flat label -> value dict, for a notebook table."""
    cpu, pkgs = fp.get("cpu", {}), fp.get("packages", {})
    gpus = fp.get("gpu") or []
    flags = cpu.get("flags") or {}
    return {
        "machine": machine_label(fp.get("machine") or machine(fp)),
        "host": fp.get("host"),
        "CPU": cpu.get("model"),
        "ISA": cpu_isa_summary(fp),
        "CPU flags": ", ".join(k for k, v in flags.items() if v) or "unknown",
        "cores (physical / logical)": f"{cpu.get('physical_cores')} / {cpu.get('logical_cores')}",
        "torch threads": cpu.get("torch_threads"),
        "memory (GiB)": fp.get("memory_gib"),
        "GPU": "; ".join(f"{g.get('name')} ({g.get('memory_gib')} GiB, driver {g.get('driver')})" for g in gpus)
        or "none",
        "OS": (fp.get("os") or {}).get("platform"),
        "Python": (fp.get("python") or {}).get("version"),
        **{name: pkgs.get(name) for name in PACKAGES},
        "onnxruntime providers": ", ".join((fp.get("onnxruntime") or {}).get("providers") or []),
        "git commit": ((fp.get("git") or {}).get("commit") or "none")[:12]
        + (" (dirty)" if (fp.get("git") or {}).get("dirty") else ""),
        "profile": fp.get("profile"),
    }
