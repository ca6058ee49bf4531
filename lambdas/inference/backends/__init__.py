"""Inference backends behind one port, and their registry.

Each name in ``REGISTERED`` is a module of this package with a ``SPEC`` (``base.BackendSpec``): registering a
backend is one line here. Only the configured backend's module is imported by the function.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .base import BackendSpec, ClientOptions, ImageSource, InferenceBackend

if TYPE_CHECKING:
    from ..settings import Settings

REGISTERED = ("rekognition", "sagemaker")

__all__ = [
    "REGISTERED",
    "BackendSpec",
    "ClientOptions",
    "ImageSource",
    "InferenceBackend",
    "build_backend",
    "client_options",
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


def build_backend(settings: Settings, client: object | None = None) -> InferenceBackend:
    """The configured backend's adapter; creates a client for that backend only."""
    return spec(settings.backend).create(settings.model, client_options(settings), client)


def client_options(settings: Settings) -> ClientOptions:
    """How the configured model is called: timeouts, pace and limits from the settings."""
    from ..pacing import RateLimiter

    rate = settings.model_calls_per_second
    return ClientOptions(
        read_timeout=settings.backend_read_timeout_seconds,
        pool_size=settings.record_concurrency,
        pace=RateLimiter(rate) if rate else None,
        call_timeout=settings.backend_call_timeout_seconds,
        max_response_bytes=settings.model_response_max_bytes,
        max_labels=settings.max_labels_per_image,
    )
