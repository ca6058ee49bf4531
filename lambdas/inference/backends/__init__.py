"""Inference backends behind one port, and their registry.

Each name in ``REGISTERED`` is a module of this package with a ``SPEC`` (``base.BackendSpec``): registering a
backend is one line here. Only the configured backend's module is imported by the function.
"""

from __future__ import annotations

import importlib
from typing import Any

from lambdas.inference.backends.base import BackendSpec, ClientOptions, InferenceBackend
from lambdas.inference.images import ImageSource

REGISTERED = ("rekognition", "sagemaker")

__all__ = [
    "REGISTERED",
    "BackendSpec",
    "ClientOptions",
    "ImageSource",
    "InferenceBackend",
    "spec",
    "specs",
]


def spec(name: str) -> BackendSpec:
    """The registered backend called ``name`` (imports its module)."""
    if name not in REGISTERED:
        raise KeyError(f"no backend {name!r}; registered: {', '.join(REGISTERED)}")
    module: Any = importlib.import_module(f"{__name__}.{name}")
    found: BackendSpec = module.SPEC
    return found


def specs() -> tuple[BackendSpec, ...]:
    """Every registered backend."""
    return tuple(spec(name) for name in REGISTERED)
