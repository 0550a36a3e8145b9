"""The method registry: name -> card. Cards are torch-free; adapters are imported only when built."""

from __future__ import annotations

import fnmatch
import importlib
import importlib.util
import os
import pkgutil
from pathlib import Path

from msbench.datasets.registry import load_entry_points, unknown_name_error

from .card import MethodCard

_CARDS: dict[str, MethodCard] = {}
_LOADED = False


def register(card: MethodCard) -> MethodCard:
    """Adds a card to the registry; a duplicate name is an error."""
    if card.name in _CARDS and _CARDS[card.name] is not card:
        raise ValueError(f"method {card.name!r} is registered twice.")
    _CARDS[card.name] = card
    return card


def _load_builtin() -> None:
    """Imports ``msbench.methods.<pkg>.card`` for every method package; each card module calls ``register``."""
    global _LOADED
    if _LOADED:
        return
    package_dir = str(Path(__file__).parent)  # this package's folder: the method packages beside this module
    for info in sorted(pkgutil.iter_modules([package_dir]), key=lambda i: i.name):
        if info.ispkg and importlib.util.find_spec(f"msbench.methods.{info.name}.card") is not None:
            importlib.import_module(f"msbench.methods.{info.name}.card")
    _LOADED = True
    _load_plugins()
    load_entry_points(PLUGIN_GROUP)


PLUGIN_GROUP = "msbench.methods"
"""Entry-point group of user methods: each entry point names a card module that calls :func:`register`."""


PLUGINS_VARIABLE = "MSBENCH_PLUGINS"
"""Comma-separated modules imported after the built-in cards: how users register their own methods (each module
calls :func:`register`, exactly as a built-in card module does)."""


def _load_plugins() -> None:
    for module in (m.strip() for m in os.environ.get(PLUGINS_VARIABLE, "").split(",")):
        if not module:
            continue
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise KeyError(
                f"{PLUGINS_VARIABLE} names module {module!r}, which cannot be imported ({err}); "
                "put it on PYTHONPATH or fix the variable."
            ) from err


def list_methods(pattern: str = "*") -> list[str]:
    """Registered method names matching an fnmatch pattern."""
    _load_builtin()
    return sorted(n for n in _CARDS if fnmatch.fnmatch(n, pattern))


def get_card(name: str) -> MethodCard:
    """The card of a registered method; an unknown name fails with the known ones."""
    _load_builtin()
    try:
        return _CARDS[name]
    except KeyError:
        raise unknown_name_error("method", name, _CARDS) from None


def resolve_methods(spec: str) -> list[str]:
    """``all``, a comma-separated list, or fnmatch patterns -> registered names, in order, without repeats.

    Raises:
        KeyError: ``spec`` names no method (empty, only commas) or a name/pattern matches no registered method.
    """
    if not any(p.strip() for p in spec.split(",")):
        raise KeyError(
            f"--method {spec!r} names no method; give 'all', a comma-separated list or a pattern like "
            f"'fcdensenet*'. Known methods: {', '.join(list_methods())}."
        )
    names: list[str] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        found = list_methods() if part == "all" else (list_methods(part) if any(ch in part for ch in "*?[") else [part])
        if not found:
            raise KeyError(f"no method matches {part!r}. Known methods: {', '.join(list_methods())}.")
        for name in found:
            get_card(name)
            if name not in names:
                names.append(name)
    return names
