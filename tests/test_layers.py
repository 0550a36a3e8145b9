"""The layers' light imports: what the board, the cards and the data readers need loads without the heavy parts."""

from __future__ import annotations

import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest


def _modules_after(statement: str) -> set[str]:
    code = f"import sys\n{statement}\nprint(' '.join(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


@pytest.mark.parametrize(
    "statement",
    [
        "import msbench.benchmark.metrics.specs",
        "from msbench.benchmark.metrics import METRIC_SPECS, SUITE_VERSION, summarize, isbi_challenge_score",
    ],
)
def test_metric_specs_and_tables_import_without_numba_or_torch(statement):
    loaded = _modules_after(statement)
    assert "numba" not in loaded and "torch" not in loaded


def test_reading_a_mask_needs_no_metric_code(tmp_path):
    path = tmp_path / "mask.nii.gz"
    nib.save(nib.Nifti1Image(np.eye(3, dtype=np.uint8)[None].repeat(3, 0), np.eye(4)), path)
    read = f"from msbench.datasets.nifti import read_mask\nassert read_mask({str(path)!r})[0].sum() == 9"
    loaded = _modules_after(read)
    assert not any(name.startswith("msbench.benchmark") for name in loaded)


def test_scoring_still_loads_its_kernels_on_first_use():
    loaded = _modules_after("from msbench.benchmark.metrics import evaluate_case")
    assert "numba" in loaded


def test_the_command_line_imports_without_the_harness():
    loaded = _modules_after("import msbench.benchmark.cli")  # every 'msbench --help'
    assert not {"numba", "torch", "streamlit", "optuna", "scipy", "nibabel"} & loaded


@pytest.mark.parametrize("statement", ["import msbench.datasets", "from msbench.methods import get_card"])
def test_data_sets_and_cards_import_without_the_phantom_generator(statement):
    loaded = _modules_after(statement)
    assert not {"scipy", "nibabel", "torch", "numba"} & loaded


def test_the_protocol_defines_exactly_the_budgets_the_cards_name() -> None:
    from msbench.benchmark.protocol import BUDGETS as PROTOCOL_BUDGETS
    from msbench.methods.card import BUDGETS as CARD_BUDGETS

    assert tuple(PROTOCOL_BUDGETS) == CARD_BUDGETS
