"""The function's adapters, one per registered backend (``lambdas/contract/backends``), behind one port
(``base.InferenceBackend``). Only the configured backend's module is imported.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from lambdas.contract.backends import REGISTERED, spec
from lambdas.inference.backends.base import ClientOptions, InferenceBackend
from lambdas.inference.images import ImageSource

__all__ = ["REGISTERED", "ClientOptions", "ImageSource", "InferenceBackend", "adapter"]


def adapter(name: str) -> Callable[[Any, ClientOptions, Any], InferenceBackend]:
    """The factory of the backend called ``name``: ``(its settings, options, a client or None)`` (imports its
    module)."""
    module: Any = importlib.import_module(f"{__name__}.{spec(name).name}")  # a registered name, or spec's KeyError
    create: Callable[[Any, ClientOptions, Any], InferenceBackend] = module.create
    return create
