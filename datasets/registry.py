"""Named datasets: where they live, their layout, their default protocol, and the function that lists their cases."""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from .case import Case


class DatasetNotFoundError(FileNotFoundError):
    """The dataset's files are not where msbench looked for them."""


@dataclass(frozen=True)
class DatasetSpec:
    """What a dataset is and how to find it.

    Attributes:
        name: Registry name (``isbi2015``).
        title: Human title.
        layout: The on-disk layout the loader expects, as shown to users in errors.
        env_var: Environment variable that sets the data root (``--data-root`` overrides it).
        protocols: Named split protocols, the first the default: a committed file, or for datasets whose case list
            is the user's (``nnunet-raw``) a file made by ``make_kfold_split`` in ``$MSBENCH_SPLITS_DIR``. Empty
            for datasets without references (prediction only).
        references: Reference masks the dataset provides; the first is the primary reference.
        loader: ``"module:function"`` taking the root directory and returning the cases.
        citation: Where the data comes from.
    """

    name: str
    title: str
    layout: str
    env_var: str
    protocols: tuple[str, ...]
    references: tuple[str, ...]
    loader: str
    citation: str = ""
    prepare: str | None = None
    """Optional ``"module:function"`` making the data exist: (root, resolution_mm) -> root."""
    patients_from_regex: bool = False
    """Whether the loader takes ``patient_regex`` (its case ids do not name their patients: ``nnunet-raw``)."""

    @property
    def default_protocol(self) -> str:
        if not self.protocols:
            raise ValueError(
                f"dataset {self.name!r} has no split protocol: its cases have no reference masks, so it serves "
                "predictions only (train on a dataset with references, then predict these cases)."
            )
        return self.protocols[0]

    @property
    def primary_reference(self) -> str:
        if not self.references:
            raise ValueError(f"dataset {self.name!r} has no reference masks; its cases can be predicted, not scored.")
        return self.references[0]

    def resolve_root(self, root: Path | str | None) -> Path:
        """The data root: the explicit argument, else the environment variable."""
        if root is not None:
            return Path(root).expanduser()
        value = os.environ.get(self.env_var)
        if not value:
            raise DatasetNotFoundError(self.missing_message(None))
        return Path(value).expanduser()

    def missing_message(self, root: Path | None, problem: str = "") -> str:
        where = f"looked in {root}" if root is not None else f"no data root given and ${self.env_var} is not set"
        lines = [
            f"dataset {self.name!r} not found: {where}.",
            *([problem] if problem else []),
            f"Expected layout ({self.title}):",
            *(f"    {line}" for line in self.layout.strip().splitlines()),
            f"Point msbench at it with --data-root DIR or the environment variable {self.env_var}=DIR.",
            "No data? Use the embedded synthetic phantom instead: --dataset synth-ms",
        ]
        return "\n".join(lines)

    def prepare_root(self, root: Path | str | None, *, resolution_mm: float, progress: bool = True) -> Path:
        """The data root, made to exist first for generated datasets."""
        if self.prepare is None:
            return self.resolve_root(root)
        module_name, attr = self.prepare.split(":")
        make = getattr(importlib.import_module(module_name), attr)
        given = Path(root) if root is not None else os.environ.get(self.env_var)
        return Path(make(Path(given) if given else None, resolution_mm=resolution_mm, progress=progress))

    def load_cases(self, root: Path | str | None = None, *, patient_regex: str | None = None) -> list[Case]:
        """Lists and validates the dataset's cases (images are not read).

        Args:
            root: The data root (default: the environment variable).
            patient_regex: ``--patient-regex``, for a dataset whose loader takes it (``patients_from_regex``).

        Raises:
            ValueError: ``patient_regex`` for a dataset whose loader knows its patients.
        """
        module_name, attr = self.loader.split(":")
        loader: Callable[..., list[Case]] = getattr(importlib.import_module(module_name), attr)
        if patient_regex is None:
            return loader(self.resolve_root(root))
        if not self.patients_from_regex:
            takes = [n for n in list_datasets() if get_dataset(n).patients_from_regex]
            raise ValueError(
                f"--patient-regex applies to --dataset {' or '.join(takes)} only (got {self.name!r}, whose loader "
                "knows its patients)."
            )
        return loader(self.resolve_root(root), patient_regex=patient_regex)


_REGISTRY: dict[str, DatasetSpec] = {}


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    """Adds a dataset to the registry (after the built-in ones, so a user's first registration hides none of them).

    Raises:
        ValueError: The name is registered already.
    """
    _ensure_builtin()
    if spec.name in _REGISTRY:
        raise ValueError(f"dataset {spec.name!r} is registered twice.")
    _REGISTRY[spec.name] = spec
    return spec


def list_datasets() -> list[str]:
    _ensure_builtin()
    return sorted(_REGISTRY)


def get_dataset(name: str) -> DatasetSpec:
    _ensure_builtin()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise unknown_name_error("dataset", name, _REGISTRY) from None


def unknown_name_error(kind: str, name: str, known: Iterable[str]) -> KeyError:
    """The registries' one error for an unknown name: the nearest known name ("did you mean") and the full list."""
    names = sorted(known)
    close = difflib.get_close_matches(name, names, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return KeyError(f"unknown {kind} {name!r}.{hint} Known {kind}s: {', '.join(names)}.")


class PluginError(KeyError):
    """An installed plugin (entry point) that cannot be loaded; the CLI prints it in one line."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


_LOADED = False
PLUGIN_GROUP = "msbench.datasets"
"""Entry-point group of user datasets: each entry point names a module that calls :func:`register_dataset`."""


def _ensure_builtin() -> None:
    """Registers the built-in datasets, then the plugins' (entry points of ``PLUGIN_GROUP``), once."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True  # set first: the modules imported below call register_dataset, which comes back here
    try:
        importlib.import_module("msbench.datasets._builtin")
        load_entry_points(PLUGIN_GROUP)
    except BaseException:
        _LOADED = False
        raise


def load_entry_points(group: str) -> None:
    """Imports every installed plugin module of an entry-point group (``[project.entry-points."<group>"]``).

    Raises:
        PluginError: A plugin cannot be imported (names the distribution, the entry point and the error).
    """
    for point in sorted(importlib.metadata.entry_points(group=group), key=lambda p: p.name):
        try:
            point.load()
        except Exception as err:
            where = f" of {point.dist.name}" if point.dist is not None else ""
            raise PluginError(
                f"plugin entry point {point.name!r}{where} (group {group!r}, {point.value!r}) cannot be loaded: "
                f"{type(err).__name__}: {err}"
            ) from err
