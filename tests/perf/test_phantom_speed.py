"""Speed of synth-ms generation next to the floor of writing the same files, measured in the same run.

Run: ``pytest tests/perf/test_phantom_speed.py -m perf --benchmark-enable -p no:cacheprovider -s``.
Generates one full-resolution patient (4 time points, 4 contrasts, 3 masks: 28 files of 181x217x181) and
compares it with writing 28 constant volumes of the same shapes and dtypes with nibabel (the I/O floor).
The nilearn templates are loaded once beforehand, as a cached phantom build would.
"""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from msbench.datasets.phantom import generate_synth_ms
from msbench.datasets.phantom._anatomy import load_template
from msbench.datasets.phantom._grid import Grid

pytestmark = pytest.mark.perf
MEDIANS_S: dict[str, float] = {}
_COUNTER = itertools.count()


def test_generate_one_full_resolution_patient(benchmark, tmp_path: Path) -> None:
    load_template(1.0)

    def generate() -> Path:
        out = tmp_path / f"phantom{next(_COUNTER)}"
        root = generate_synth_ms(out, seed=0, resolution_mm=1.0, n_patients=1, progress=False)
        return root

    root = benchmark.pedantic(generate, rounds=2, iterations=1, warmup_rounds=0)
    assert len(list(root.rglob("*.nii"))) == 28
    MEDIANS_S["synth-ms"] = benchmark.stats.stats.median
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_write_the_same_files_with_nibabel(benchmark, tmp_path: Path) -> None:
    grid = Grid.for_resolution(1.0)
    image = np.full(grid.shape, 500.0, dtype=np.float32)
    mask = np.zeros(grid.shape, dtype=np.uint8)

    def write() -> None:
        out = tmp_path / f"io{next(_COUNTER)}"
        out.mkdir()
        for i in range(16):
            nib.save(nib.Nifti1Image(image, grid.affine), out / f"image{i}.nii")
        for i in range(12):
            nib.save(nib.Nifti1Image(mask, grid.affine), out / f"mask{i}.nii")

    benchmark.pedantic(write, rounds=3, iterations=1, warmup_rounds=0)
    MEDIANS_S["nibabel write"] = benchmark.stats.stats.median
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_report_ratio(capsys) -> None:
    if not {"synth-ms", "nibabel write"} <= set(MEDIANS_S):
        pytest.skip("the ratio needs both benchmarks of this module in the same run")
    ratio = MEDIANS_S["synth-ms"] / MEDIANS_S["nibabel write"]
    with capsys.disabled():
        print(
            f"\nmedian s: synth-ms one patient {MEDIANS_S['synth-ms']:.2f}, "
            f"writing its 28 files {MEDIANS_S['nibabel write']:.2f}; generation / I/O floor = {ratio:.1f}x"
        )
    assert ratio > 1.0
