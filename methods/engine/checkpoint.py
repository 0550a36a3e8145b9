"""Checkpoints written atomically and read back with ``torch.load(weights_only=True)``; RNG states as plain data."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from msbench.benchmark.store.files import atomic_path

CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_VERSION = 1


def save_atomic(payload: dict[str, Any], path: Path) -> None:
    """Writes ``payload`` with ``torch.save`` into a temporary file beside ``path``, then renames it over ``path``.

    A crash while writing leaves the previous checkpoint intact: readers only ever see a complete file. The file's
    mode is 0666 less the umask, as for every file of a results store (a group may predict from a shared store).
    """
    with atomic_path(Path(path)) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Reads a checkpoint with ``weights_only=True`` (tensors and plain containers only)."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(
            f"{path}: cannot read the training checkpoint ({err}). Delete it to train from scratch."
        ) from err
    if not isinstance(payload, dict) or payload.get("version") != CHECKPOINT_VERSION:
        raise ValueError(
            f"{path}: not an msbench engine checkpoint of version {CHECKPOINT_VERSION}. "
            "Delete it to train from scratch."
        )
    return payload


def capture_rng_states() -> dict[str, Any]:
    """The torch, CUDA, numpy (legacy global) and python RNG states, as tensors and plain containers."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": _to_lists(random.getstate()),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    """Restores what :func:`capture_rng_states` captured."""
    torch.set_rng_state(states["torch"])
    np_state = states["numpy"]
    np.random.set_state(
        (
            np_state["kind"],
            np_state["keys"].numpy().astype(np.uint32),
            np_state["pos"],
            np_state["has_gauss"],
            np_state["cached_gaussian"],
        )
    )
    random.setstate(_to_tuples(states["python"]))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _to_lists(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_to_lists(v) for v in value]
    return value


def _to_tuples(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_to_tuples(v) for v in value)
    return value


def load_trained_weights(model: torch.nn.Module, workdir: Path) -> torch.nn.Module:
    """Loads the selected epoch's weights (``best_weights``) of the engine checkpoint in ``workdir`` into ``model``.

    Raises:
        FileNotFoundError: ``workdir`` holds no checkpoint (the job's ``work/`` folder was removed).
        ValueError: The checkpoint is not an msbench engine checkpoint, or its weights do not fit ``model``.
    """
    path = Path(workdir) / CHECKPOINT_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no trained model here (the job's work/ folder holds its checkpoint).")
    payload = load_checkpoint(path)
    try:
        model.load_state_dict(payload.get("best_weights") or payload["model"])
    except RuntimeError as err:
        raise ValueError(f"{path}: the stored weights do not fit the network this code builds ({err}).") from err
    return model.eval()
