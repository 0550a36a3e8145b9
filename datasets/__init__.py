"""Datasets: loaders for the layouts users have, the synth-ms phantom, committed splits and the case iterator."""

from .case import MODALITIES, Case
from .registry import DatasetNotFoundError, DatasetSpec, get_dataset, list_datasets, register_dataset
from .splits import Fold, Split, case_fingerprint, load_split

__all__ = [
    "MODALITIES",
    "Case",
    "DatasetNotFoundError",
    "DatasetSpec",
    "Fold",
    "Split",
    "case_fingerprint",
    "get_dataset",
    "list_datasets",
    "load_split",
    "register_dataset",
]
