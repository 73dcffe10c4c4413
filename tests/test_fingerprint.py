import json
import shutil

import psutil
import pytest
import torch

from helpers.core import fingerprint

CPUINFO_X86 = """\
processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC 9454 48-Core Processor
stepping\t: 1
flags\t\t: fpu sse2 fma avx avx2 avx512f avx512_bf16 avx512_vnni avx512bw

processor\t: 1
vendor_id\t: GenuineIntel
model name\t: should not be read
flags\t\t: amx_tile amx_bf16 amx_int8 avx_vnni
"""

CPUINFO_ARM = """\
processor\t: 0
BogoMIPS\t: 50.00
Features\t: fp asimd evtstrm aes sve bf16 i8mm
CPU implementer\t: 0x41
"""


@pytest.fixture(scope="module")
def fp(tmp_path_factory):
    # onnxruntime writes under $XDG_CACHE_HOME on import: keep that in a temp dir
    mp = pytest.MonkeyPatch()
    mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
    yield fingerprint.fingerprint(profile="smoke")
    mp.undo()


def test_parse_cpuinfo_x86_reads_first_processor_only():
    info = fingerprint.parse_cpuinfo(CPUINFO_X86)
    assert info["model"] == "AMD EPYC 9454 48-Core Processor"
    assert info["vendor"] == "AuthenticAMD"
    assert (info["family"], info["model_number"], info["stepping"]) == ("25", "17", "1")
    flags = info["flags"]
    assert set(flags) == set(fingerprint.FLAGS_OF_INTEREST)
    for f in ("fma", "avx2", "avx512f", "avx512_bf16", "avx512_vnni"):
        assert flags[f] is True, f
    for f in ("avx_vnni", "amx_tile", "amx_bf16", "amx_int8"):
        assert flags[f] is False, f


def test_parse_cpuinfo_arm_and_missing_flags():
    arm = fingerprint.parse_cpuinfo(CPUINFO_ARM)
    assert arm["vendor"] == "0x41"
    assert all(v is False for v in arm["flags"].values())
    unknown = fingerprint.parse_cpuinfo("processor : 0\n")
    assert all(v is None for v in unknown["flags"].values())


def test_fingerprint_is_json_and_complete(fp):
    back = json.loads(json.dumps(fp))
    for key in (
        "host",
        "cpu",
        "memory_gib",
        "gpu",
        "os",
        "python",
        "packages",
        "onnxruntime",
        "torch_backends",
        "git",
        "profile",
        "timestamp",
        "machine",
    ):
        assert key in back, key
    assert back["profile"] == "smoke"
    assert set(fp["cpu"]["flags"]) == set(fingerprint.FLAGS_OF_INTEREST)
    assert fp["memory_gib"] > 0
    assert set(fp["packages"]) == set(fingerprint.PACKAGES)
    assert fp["timestamp"].endswith("+00:00")


def test_cores_threads_and_versions(fp):
    assert fp["cpu"]["physical_cores"] == psutil.cpu_count(logical=False)
    assert fp["cpu"]["logical_cores"] == psutil.cpu_count(logical=True)
    assert fp["cpu"]["torch_threads"] == torch.get_num_threads()
    assert fp["packages"]["torch"] == torch.__version__
    assert "CPUExecutionProvider" in fp["onnxruntime"]["providers"]
    assert fp["onnxruntime"]["distribution"] in fingerprint.ORT_DISTRIBUTIONS


@pytest.mark.skipif(
    torch.cuda.is_available() or shutil.which("nvidia-smi") is not None, reason="this machine has a GPU"
)
def test_no_gpu_gives_empty_list(fp):
    assert fp["gpu"] == []


def test_write_environment(tmp_path, fp):
    out = tmp_path / "results" / "environment.json"
    written = fingerprint.write_environment(out, profile="quick")
    on_disk = json.loads(out.read_text())
    assert on_disk["profile"] == "quick" and on_disk["machine"] == fp["machine"]
    assert written["host"] == on_disk["host"] == fp["host"]


def test_git_info_outside_a_checkout(tmp_path):
    assert fingerprint.git_info(tmp_path) == {"commit": None, "dirty": None}


def test_git_info_counts_a_change_as_dirty_except_under_reference(tmp_path):
    import subprocess

    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True)

    git("init", "-q")
    (tmp_path / "reference").mkdir()
    (tmp_path / "code.py").write_text("x = 1\n")
    git("add", ".")
    git("commit", "-qm", "first")
    assert fingerprint.git_info(tmp_path)["dirty"] is False
    (tmp_path / "reference" / "part.csv").write_text("a\n")  # a reference run's own output
    assert fingerprint.git_info(tmp_path)["dirty"] is False
    (tmp_path / "code.py").write_text("x = 2\n")
    assert fingerprint.git_info(tmp_path)["dirty"] is True


def test_captions():
    flags = dict.fromkeys(fingerprint.FLAGS_OF_INTEREST, False)
    fp = {
        "host": "box",
        "cpu": {
            "model": "AMD EPYC",
            "torch_threads": 2,
            "flags": dict(flags, avx2=True, avx512f=True, avx512_vnni=True, avx512_bf16=True),
        },
        "packages": {"torch": "2.13.0", "onnxruntime": "1.31.1"},
        "gpu": [],
    }
    assert fingerprint.cpu_isa_summary(fp) == "AMD EPYC · AVX-512 · VNNI · BF16 · no AMX"
    fp["cpu"].update(vendor="AuthenticAMD", family="25", model_number="17", stepping="1", logical_cores=2)
    fp["memory_gib"] = 23.5
    digest = fingerprint.machine(fp)["fingerprint"]
    assert fingerprint.short_caption(fp, "r1") == (
        f"AMD EPYC (Zen 4) · 2 cores · 24 GiB · no GPU · #{digest} · 2 threads · torch 2.13.0 · ort 1.31.1 · run r1"
    )
    fp["cpu"]["flags"] = dict(flags, avx2=True, amx_tile=True)
    assert fingerprint.cpu_isa_summary(fp) == "AMD EPYC · AVX2 · AMX"
    fp["cpu"]["flags"] = dict.fromkeys(fingerprint.FLAGS_OF_INTEREST)  # unknown, e.g. Windows
    fp["cpu"]["architecture"] = "arm64"
    assert fingerprint.cpu_isa_summary(fp) == "AMD EPYC · arm64"


def test_real_caption(fp):
    assert f"#{fp['machine']['fingerprint']}" in fingerprint.short_caption(fp)
    assert fingerprint.cpu_isa_summary(fp)


def test_machines_alike_by_name_are_told_apart_by_their_hash():
    base = {
        "host": "vm",
        "cpu": {
            "model": "AMD EPYC",
            "vendor": "AuthenticAMD",
            "family": "25",
            "model_number": "17",
            "stepping": "1",
            "logical_cores": 2,
        },
        "memory_gib": 23.5,
        "gpu": [],
    }
    same = fingerprint.machine(json.loads(json.dumps(base)))
    assert fingerprint.machine(base) == same and len(same["fingerprint"]) == 8
    more_cores = json.loads(json.dumps(base))
    more_cores["cpu"]["logical_cores"] = 16
    with_gpu = dict(base, gpu=[{"name": "NVIDIA H100"}])
    zen3 = json.loads(json.dumps(base))
    zen3["cpu"]["model_number"] = "1"
    hashes = {fingerprint.machine(m)["fingerprint"] for m in (base, more_cores, with_gpu, zen3)}
    assert len(hashes) == 4
    assert fingerprint.machine(zen3)["microarchitecture"] == "Zen 3" and same["microarchitecture"] == "Zen 4"
    assert "NVIDIA H100" in fingerprint.machine_label(fingerprint.machine(with_gpu))


def test_interpreter_inside_the_project_is_recorded_relative_to_it(monkeypatch):
    import sys

    from helpers.core.paths import ROOT

    monkeypatch.setattr(sys, "executable", str(ROOT / ".venv" / "bin" / "python"))
    assert fingerprint.fingerprint()["python"]["executable"] == ".venv/bin/python"
    monkeypatch.setattr(sys, "executable", "/usr/bin/python3")
    assert fingerprint.fingerprint()["python"]["executable"] == "/usr/bin/python3"
