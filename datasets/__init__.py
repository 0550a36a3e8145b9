"""Datasets: loaders for the layouts users have, the synth-ms phantom, committed splits and the case iterator."""

from ._layout import MissingFileError, canonical_modality
from .case import EXTRA_MODALITIES, MODALITIES, ArrayCase, Case
from .info import dataset_info, describe_datasets
from .iteration import LoadedCase, iter_cases, load_case
from .nifti import read_mask
from .registry import DatasetNotFoundError, DatasetSpec, get_dataset, list_datasets, register_dataset
from .splits import Fold, Split, case_fingerprint, load_split, make_kfold_split

__all__ = [
    "EXTRA_MODALITIES",
    "MODALITIES",
    "ArrayCase",
    "Case",
    "DatasetNotFoundError",
    "DatasetSpec",
    "Fold",
    "LoadedCase",
    "MissingFileError",
    "Split",
    "canonical_modality",
    "case_fingerprint",
    "dataset_info",
    "describe_datasets",
    "get_dataset",
    "iter_cases",
    "list_datasets",
    "load_case",
    "load_split",
    "make_kfold_split",
    "read_mask",
    "register_dataset",
]
