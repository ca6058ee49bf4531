"""Tracing through Powertools' Tracer (AWS X-Ray), created only when tracing is on.

Powertools imports the X-Ray SDK and builds its recorder as soon as a ``Tracer`` exists, even with
``POWERTOOLS_TRACE_DISABLED=true``. With tracing off, a no-op stand-in with the same two entry points keeps
that cost out. With tracing on, most of the cost was not tracing: importing ``aws_xray_sdk.core`` builds two
recorders, and each builds a botocore client for X-Ray's centralized sampling API (loading the service model:
~130 ms of a ~140 ms import, profiled 2026-11-29). In Lambda nothing calls that API (Lambda decides sampling and
the SDK reads it from the trace header), so the client is built only when first used (``_lazy_sampling_client``).
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from collections.abc import Callable, Iterator
from typing import Any, Protocol


class Segment(Protocol):
    def put_annotation(self, key: str, value: Any) -> None: ...


class Tracing(Protocol):
    def capture_lambda_handler(self, capture_response: bool = ...) -> Callable[[Any], Any]: ...

    def record_segment(self, name: str) -> contextlib.AbstractContextManager[Segment]: ...


class _NoSegment:
    def put_annotation(self, key: str, value: Any) -> None:
        return None


class NoTracing:
    def capture_lambda_handler(self, capture_response: bool = False) -> Callable[[Any], Any]:
        return lambda handler: handler

    @contextlib.contextmanager
    def record_segment(self, name: str) -> Iterator[Segment]:
        yield _NoSegment()


SAMPLING_CONNECTOR = "aws_xray_sdk.core.sampling.connector"


class _LazyClient:
    """Stands in for a botocore client until something uses it."""

    def __init__(self, create: Callable[[], Any]) -> None:
        self._create = create
        self._client: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._client is None:
            self._client = self._create()
        return getattr(self._client, name)


class _LazySamplingClient(importlib.abc.MetaPathFinder):
    """When the X-Ray SDK loads its sampling connector, make the connector's client lazy before any recorder
    exists (the SDK builds one at import)."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if name != SAMPLING_CONNECTOR:
            return None
        sys.meta_path.remove(self)  # once: the real finders find the module
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader: Any = spec.loader
        load = loader.exec_module

        def exec_module(module: types.ModuleType) -> None:
            load(module)
            connector = module.ServiceConnector
            create = connector._create_xray_client

            def lazy(self: Any, ip: str = "127.0.0.1", port: str = "2000") -> _LazyClient:
                return _LazyClient(lambda: create(self, ip, port))

            connector._create_xray_client = lazy

        loader.exec_module = exec_module
        return spec


def _lazy_sampling_client() -> None:
    if SAMPLING_CONNECTOR not in sys.modules and not any(isinstance(f, _LazySamplingClient) for f in sys.meta_path):
        sys.meta_path.insert(0, _LazySamplingClient())


class XRayTracing:
    def __init__(self) -> None:
        _lazy_sampling_client()
        from aws_lambda_powertools import Tracer

        self.tracer = Tracer()

    def capture_lambda_handler(self, capture_response: bool = False) -> Callable[[Any], Any]:
        decorator: Callable[[Any], Any] = self.tracer.capture_lambda_handler(capture_response=capture_response)
        return decorator

    def record_segment(self, name: str) -> contextlib.AbstractContextManager[Segment]:
        segment: contextlib.AbstractContextManager[Segment] = self.tracer.provider.in_subsegment(name)
        return segment


def make_tracing(enabled: bool) -> Tracing:
    return XRayTracing() if enabled else NoTracing()
