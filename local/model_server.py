"""A local model endpoint that speaks the SageMaker runtime's InvokeEndpoint HTTP API on 127.0.0.1.

The unchanged SageMaker adapter reaches it through ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME``. Errors look like
SageMaker's: a container that refuses a request surfaces as ``ModelError`` (HTTP 424) carrying
``OriginalStatusCode``; an unknown endpoint as ``ValidationException``.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from . import demo_model

INVOCATIONS = re.compile(r"^/endpoints/(?P<name>[^/]+)/invocations$")
Model = Callable[[bytes, str], Any]


class ServiceError(Exception):
    """Raised by a model to answer like the service itself would (throttling, model not ready)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message = status, code, message


def demo(body: bytes, content_type: str) -> Any:
    return {"prediction": demo_model.detect(body)}


class _Handler(BaseHTTPRequestHandler):
    server: _ModelServer

    def do_POST(self) -> None:
        match = INVOCATIONS.match(self.path)
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        if not match or match["name"] not in self.server.models:
            self._error(400, "ValidationException", f"Endpoint {match['name'] if match else self.path} not found.")
            return
        model = self.server.models[match["name"]]
        try:
            answer = model(body, self.headers.get("Content-Type", ""))
        except ServiceError as exc:
            self._error(exc.status, exc.code, exc.message)
            return
        except demo_model.NotAnImage as exc:
            self._model_error(400, str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - a crashing model is a 500 from the container
            self._model_error(500, f"model failed: {exc!r}")
            return
        payload = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-amzn-RequestId", f"local-{threading.get_ident()}-{id(payload)}")
        self.end_headers()
        self.wfile.write(payload)

    def _model_error(self, original_status: int, message: str) -> None:
        self._error(
            424,
            "ModelError",
            f'Received client error ({original_status}) from primary with message "{message}"',
            OriginalStatusCode=original_status,
            OriginalMessage=message,
        )

    def _error(self, status: int, code: str, message: str, **fields: Any) -> None:
        payload = json.dumps({"message": message, **fields}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("x-amzn-ErrorType", code)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet: the demo prints its own progress


class _ModelServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, models: dict[str, Model]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.models = models


@contextmanager
def model_endpoint(models: dict[str, Model]) -> Iterator[str]:
    """Serve the models on a free port; yield the endpoint URL for AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME."""
    server = _ModelServer(models)
    thread = threading.Thread(target=server.serve_forever, name="model-server", daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host!s}:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
