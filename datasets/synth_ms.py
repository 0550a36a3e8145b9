"""The ``synth-ms`` dataset: the embedded phantom, generated once per (seed, resolution) into a cache and reused."""

from __future__ import annotations

from pathlib import Path

from .case import Case
from .isbi2015 import load_training


def default_root(seed: int = 0, resolution_mm: float = 1.0) -> Path:
    """Cache folder of the phantom for one seed, grid and generator version (``$MSBENCH_CACHE`` or ~/.cache)."""
    from .phantom import default_phantom_dir  # scipy, nibabel: the generator on use, not on import msbench.datasets

    return default_phantom_dir(seed, resolution_mm)


def generated_roots() -> list[Path]:
    """Every complete phantom of the current generator in the cache, finest grid first (any seed, any resolution)."""
    from .phantom import default_phantom_dir  # scipy, nibabel: the generator on use, not on import msbench.datasets
    from .phantom.generate import GENERATOR_VERSION, SUMMARY_NAME

    cache = default_phantom_dir().parent
    found = [p for p in cache.glob(f"seed*-*mm*-v{GENERATOR_VERSION}") if (p / SUMMARY_NAME).is_file()]
    return sorted(found, key=lambda p: (float(p.name.split("-")[1].removesuffix("mm")), p.name))


def prepare(root: Path | None, *, seed: int = 0, resolution_mm: float = 1.0, progress: bool = True) -> Path:
    """Makes sure the phantom exists (generating it if needed) and returns its root.

    Without ``root`` it lives in the cache, and generating it there says where first (:func:`generate_cached`).
    """
    from .phantom import generate_synth_ms  # scipy, nibabel: the generator on use, not on import msbench.datasets
    from .phantom.realism import generate_cached

    if root is None:
        return generate_cached(seed, resolution_mm, progress=progress)
    return generate_synth_ms(Path(root), seed=seed, resolution_mm=resolution_mm, progress=progress)


def load(root: Path) -> list[Case]:
    """Lists the phantom's cases: the ISBI 2015 training layout plus the phantom's truth masks."""
    return load_training(root, dataset="synth-ms")
