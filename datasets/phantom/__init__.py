"""synth-ms: a deterministic MS lesion phantom in the ISBI 2015 training layout.

``generate_synth_ms`` writes the phantom; ``realism_report`` compares it with the reference figures of
``shared/spec/phantom.md`` (and real masks when present).
"""

from __future__ import annotations

from .generate import GENERATOR_VERSION, SUMMARY_NAME, case_files, expected_files, generate_synth_ms, timepoints
from .realism import (
    RealismReport,
    Row,
    default_cache_dir,
    default_phantom_dir,
    default_real_dir,
    generate_cached,
    realism_report,
)

__all__ = [
    "GENERATOR_VERSION",
    "SUMMARY_NAME",
    "RealismReport",
    "Row",
    "case_files",
    "default_cache_dir",
    "default_phantom_dir",
    "default_real_dir",
    "expected_files",
    "generate_cached",
    "generate_synth_ms",
    "realism_report",
    "timepoints",
]
