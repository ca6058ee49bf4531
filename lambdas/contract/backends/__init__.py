"""The model services the stack can call, and their registry.

Each name in ``REGISTERED`` is a module of this package with a ``SPEC`` (``spec.BackendSpec``) and a module of
``lambdas/inference/backends`` with the function's adapter: registering a backend is one line here and those two
modules. Only the configured backend's module is imported.
"""

from __future__ import annotations

import importlib
from typing import Any

from lambdas.contract.backends.spec import BackendSpec

REGISTERED = ("rekognition", "sagemaker")

__all__ = ["REGISTERED", "BackendSpec", "spec", "specs"]


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
