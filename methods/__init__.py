"""Methods: torch-free cards in a registry, and adapters that build, fit and predict."""

from .adapter import Adapter, FitContext, FitReport, Prediction, build_adapter
from .card import BUDGETS, CategoricalParam, Claim, FloatParam, IntParam, MethodCard, Recipe
from .registry import get_card, list_methods, register, resolve_methods

__all__ = [
    "BUDGETS",
    "Adapter",
    "CategoricalParam",
    "Claim",
    "FitContext",
    "FitReport",
    "FloatParam",
    "IntParam",
    "MethodCard",
    "Prediction",
    "Recipe",
    "build_adapter",
    "get_card",
    "list_methods",
    "register",
    "resolve_methods",
]
