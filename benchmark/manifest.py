"""Run manifests: everything needed to trace a number back to the code, data, config and machine that made it."""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

TRACKED_PACKAGES = (
    "msbench",
    "numpy",
    "scipy",
    "pandas",
    "nibabel",
    "connected-components-3d",
    "edt",
    "torch",
    "torchvision",
    "monai",
    "nnunetv2",
    "timm",
    "segmentation-models-pytorch",
    "optuna",
)


def config_hash(config: Mapping[str, Any]) -> str:
    """Stable hash of a JSON-able config (sorted keys)."""
    text = json.dumps(config, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def data_fingerprint(paths: Iterable[Path]) -> str:
    """BLAKE2b over the names and bytes of every data file a run reads."""
    digest = hashlib.blake2b(digest_size=20)
    for path in sorted(set(Path(p) for p in paths)):
        digest.update(path.name.encode())
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 22):
                digest.update(chunk)
    return digest.hexdigest()


def git_state() -> dict[str, Any]:
    """Commit and dirty flag of the msbench checkout, or None when not run from one."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(dirty)}


def library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def device_info(device: str) -> dict[str, Any]:
    info: dict[str, Any] = {"requested": device, "platform": platform.platform(), "machine": platform.machine()}
    try:
        import os

        info["cpu_count"] = os.cpu_count()
        import torch

        from msbench.methods.engine.loop import default_threads  # torch: read when the versions are recorded

        # The fits' thread count: CPU results are reproducible for a seed and this count (float reduction order).
        info["torch_threads"] = default_threads(device)
        if device.startswith("cuda"):
            info["gpu"] = torch.cuda.get_device_name(torch.device(device))
            info["cuda"] = torch.version.cuda
    except ImportError:
        pass
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _field(entry: object, key: str) -> object:
    """``entry[key]`` of one entry of numpy's build configuration (None when absent)."""
    return entry.get(key) if isinstance(entry, dict) else None


def compute_stack() -> dict[str, Any]:
    """What changes CPU numbers besides the seed: CPU model and vector unit, BLAS/LAPACK, MKL, oneDNN, threads.

    Two machines with the same commit and seed train to different weights when any of these differ (float
    reduction order), so a job records them beside the library versions. Torch-free callers get the numpy part.
    """
    import os

    stack: dict[str, Any] = {
        "cpu_model": _cpu_model(),
        "thread_env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "MSBENCH_NUM_THREADS")},
    }
    try:
        import numpy as np

        numpy_config = np.show_config(mode="dicts")
        deps = numpy_config.get("Build Dependencies", {}) if isinstance(numpy_config, dict) else None
        if not isinstance(deps, dict):  # typed object (an old numpy may answer otherwise): numpy_blas is left out
            raise TypeError(f"numpy's build dependencies are a {type(deps).__name__}")
        stack["numpy_blas"] = {k: _field(deps.get(k), "name") for k in ("blas", "lapack")}
        stack["numpy_blas_version"] = _field(deps.get("blas"), "version")
    except (ImportError, TypeError, AttributeError):
        pass
    try:
        import torch
    except ImportError:
        return stack
    config = torch.__config__.show()
    stack["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    stack["torch_interop_threads"] = torch.get_num_interop_threads()
    stack["torch_mkl"] = next((ln.strip(" -") for ln in config.splitlines() if "Math Kernel Library" in ln), None)
    stack["torch_onednn"] = next((ln.strip(" -") for ln in config.splitlines() if "MKL-DNN" in ln), None)
    stack["torch_blas"] = next(
        (p.split("=", 1)[1] for p in config.replace(",", " ").split() if p.startswith("BLAS_INFO=")), None
    )
    stack["torch_lapack"] = next(
        (p.split("=", 1)[1] for p in config.replace(",", " ").split() if p.startswith("LAPACK_INFO=")), None
    )
    return stack


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def command_line() -> list[str]:
    return [Path(sys.argv[0]).name, *sys.argv[1:]]


#: Code every job runs besides its method's own package, each of which can change its numbers: the engine and the
#: adapter contract (fitting), the one door (hyper-parameters from card, budget and overrides, seeding, prediction
#: on the training grid, resampling in memory and back, scoring), the job and predict modules, the data's reading
#: and pre-processing, and the metric suite.
SHARED_CODE = (
    "msbench.methods.engine",
    "msbench.methods.adapter",
    "msbench.benchmark.fitting",
    "msbench.benchmark.job",
    "msbench.benchmark.predict",
    "msbench.benchmark.metrics",
    "msbench.datasets.case",
    "msbench.datasets.nifti",
    "msbench.datasets.masks",
    "msbench.datasets.preprocessing",
)


def code_hash(adapter: str, suite_version: str) -> str:
    """Hash of the code a job runs: the adapter's package (or module), ``SHARED_CODE`` and the metric suite version.

    Files are read from disk (not from the imported modules), so an edit is seen before the process restarts.

    A job committed under another hash was made by other code: it is rerun, or kept and marked stale on request.
    """
    import importlib.util

    module = adapter.partition(":")[0]
    owner = module.rsplit(".", 1)[0] if module.startswith("msbench.methods.") else module
    files: list[Path] = []
    for name in (owner, *SHARED_CODE):
        spec = importlib.util.find_spec(name)
        if spec is None:
            raise ValueError(f"cannot hash the code of {name!r}: module not found (adapter {adapter!r}).")
        if spec.submodule_search_locations:
            files += sorted(p for d in spec.submodule_search_locations for p in Path(d).rglob("*.py"))
        elif spec.origin:
            files.append(Path(spec.origin))
    digest = hashlib.sha256(suite_version.encode())
    for path in files:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
