"""The local services server on 127.0.0.1: where the embedded stack's model services live.

Every registered backend has an emulation of its service (``inferctl.emulator.models``: a pure request ->
response function); this server routes each HTTP request to the backend that handles it, so the unchanged
adapters reach local models through the standard ``AWS_ENDPOINT_URL_<SERVICE>`` variables.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

from inferctl.emulator.models import emulations
from inferctl.emulator.models.base import HttpRequest, HttpResponse, LocalLifecycle, LocalModel

Fetch = Callable[[str, str, str | None], bytes]  # (bucket, key, version) -> object bytes


class LocalModels:
    """The models the embedded stack serves, by model id (an endpoint name, a model version ARN...)."""

    def __init__(
        self, models: dict[str, LocalModel], fetch: Fetch, lifecycles: dict[str, LocalLifecycle] | None = None
    ) -> None:
        self.models = dict(models)
        self._fetch = fetch
        self.lifecycles = dict(lifecycles or {})  # models without one are always running

    def model(self, model_id: str) -> LocalModel | None:
        return self.models.get(model_id)

    def model_ids(self) -> list[str]:
        return list(self.models)

    def lifecycle(self, model_id: str) -> LocalLifecycle | None:
        return self.lifecycles.get(model_id)

    def fetch(self, bucket: str, key: str, version: str | None) -> bytes:
        return self._fetch(bucket, key, version)


class _Handler(BaseHTTPRequestHandler):
    server: _ServicesServer

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        url = urlsplit(self.path)
        request = HttpRequest(
            method=self.command,
            path=url.path,
            query=dict(parse_qsl(url.query)),
            headers=dict(self.headers.items()),
            body=self.rfile.read(length) if length else b"",
        )
        response = self.server.route(request)
        self.send_response(response.status)
        headers = {"Content-Type": "application/json", **response.headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.send_header("x-amzn-RequestId", f"local-{threading.get_ident()}-{id(response)}")
        self.end_headers()
        try:
            if not response.seconds_per_byte:
                self.wfile.write(response.body)
                return
            stop = self.server.stopping
            for index in range(len(response.body)):
                self.wfile.write(response.body[index : index + 1])
                self.wfile.flush()
                if stop.wait(response.seconds_per_byte):
                    return
        except (BrokenPipeError, ConnectionResetError):
            return  # the caller stopped waiting (a deadline, or its process was killed): nobody to answer

    do_GET = do_POST = do_PUT = do_DELETE = _handle

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet: the callers print their own progress


class Route(Protocol):
    """Another API the local services server answers (the Lambda control plane)."""

    def handles(self, request: HttpRequest) -> bool: ...

    def serve(self, request: HttpRequest, models: Any = None) -> HttpResponse: ...


class _ServicesServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, models: LocalModels, routes: Sequence[Route]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.models = models
        self.emulations = list(emulations().values())
        self.routes = list(routes)
        self.stopping = threading.Event()  # set on shutdown: answers being trickled end at once

    def route(self, request: HttpRequest) -> HttpResponse:
        for route in self.routes:
            if route.handles(request):
                return route.serve(request, self.models)
        for emulation in self.emulations:
            if emulation.handles(request):
                return emulation.serve(request, self.models)
        return HttpResponse(
            400,
            b'{"message": "not served by the embedded stack"}',
            {"x-amzn-ErrorType": "UnknownOperationException"},
        )


@contextmanager
def local_services(models: LocalModels, routes: Sequence[Route] = ()) -> Iterator[str]:
    """Serve on a free port; yield the endpoint URL; stop when the block exits, whatever happens."""
    server = _ServicesServer(models, routes)
    thread = threading.Thread(target=server.serve_forever, name="local-services", daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host!s}:{port}"
    finally:
        server.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join()
