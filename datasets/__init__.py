"""Datasets: loaders for the layouts users have, the synth-ms phantom, and committed splits."""

from ._layout import MissingFileError, canonical_modality
from .case import DEFAULT_MODALITIES, DEFAULT_REFERENCE, EXTRA_MODALITIES, MODALITIES, ArrayCase, Case
from .info import dataset_info, describe_datasets
from .nifti import read_mask
from .registry import DatasetNotFoundError, DatasetSpec, get_dataset, list_datasets, register_dataset
from .splits import Fold, Split, case_fingerprint, load_split, make_kfold_split

__all__ = [
    "DEFAULT_MODALITIES",
    "DEFAULT_REFERENCE",
    "EXTRA_MODALITIES",
    "MODALITIES",
    "ArrayCase",
    "Case",
    "DatasetNotFoundError",
    "DatasetSpec",
    "Fold",
    "MissingFileError",
    "Split",
    "canonical_modality",
    "case_fingerprint",
    "dataset_info",
    "describe_datasets",
    "get_dataset",
    "list_datasets",
    "load_split",
    "make_kfold_split",
    "read_mask",
    "register_dataset",
]
