"""The Lambda control plane of the embedded stack: GetFunctionConfiguration, UpdateFunctionConfiguration (with
``RevisionId`` and ``LastUpdateStatus`` as Lambda answers them) and the event source mappings.

moto's Lambda keeps no ``RevisionId`` (and invokes need Docker), so the embedded stack answers these itself,
on the local services server, in Lambda's REST shapes: the operator tool's boto3 client cannot tell.
A change of the function's configuration starts new execution environments (``revision``), as on Lambda.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from inferctl.emulator.models.base import HttpRequest, HttpResponse, json_response

API = "/2015-03-31"
_FUNCTION = re.compile(rf"^{API}/functions/(?P<name>[^/]+)(?P<rest>/configuration)?/?$")
# botocore sends ListEventSourceMappings as ``/event-source-mappings`` (no trailing slash) and the others as
# ``/event-source-mappings/<UUID>``.
_MAPPING = re.compile(rf"^{API}/event-source-mappings(/(?P<uuid>[^/]*))?/?$")
UPDATE_SECONDS = 0.3  # an update is InProgress this long, then Successful (Lambda: seconds)


@dataclass
class LocalFunction:
    name: str
    environment: dict[str, str]
    memory_mb: int
    timeout_seconds: int
    revision: str = field(default_factory=lambda: str(uuid.uuid4()))
    last_update_status: str = "Successful"
    last_modified: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="milliseconds"))

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.name}"

    def configuration(self) -> dict[str, Any]:
        return {
            "FunctionName": self.name,
            "FunctionArn": self.arn,
            "Runtime": "python3.14",
            "Handler": "lambdas.inference.handler.lambda_handler",
            "MemorySize": self.memory_mb,
            "Timeout": self.timeout_seconds,
            "Environment": {"Variables": dict(self.environment)},
            "RevisionId": self.revision,
            "State": "Active",
            "LastUpdateStatus": self.last_update_status,
            "LastModified": self.last_modified,
            "Architectures": ["arm64"],
        }


@dataclass
class LocalMapping:
    function_name: str
    queue_arn: str
    batch_size: int
    enabled: bool = True
    uuid: str = field(default_factory=lambda: str(uuid.uuid4()))

    def configuration(self, function_arn: str) -> dict[str, Any]:
        return {
            "UUID": self.uuid,
            "EventSourceArn": self.queue_arn,
            "FunctionArn": function_arn,
            "BatchSize": self.batch_size,
            "State": "Enabled" if self.enabled else "Disabled",
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
        }


class LambdaApi:
    """The functions and mappings of the embedded stack, served in Lambda's REST API shapes."""

    def __init__(self) -> None:
        self.functions: dict[str, LocalFunction] = {}
        self.mappings: dict[str, LocalMapping] = {}
        self._lock = threading.Lock()

    def add_function(self, function: LocalFunction) -> LocalFunction:
        self.functions[function.name] = function
        return function

    def add_mapping(self, mapping: LocalMapping) -> LocalMapping:
        self.mappings[mapping.uuid] = mapping
        return mapping

    def handles(self, request: HttpRequest) -> bool:
        return request.path.startswith(API + "/")

    def serve(self, request: HttpRequest, models: Any = None) -> HttpResponse:
        function_match = _FUNCTION.match(request.path)
        if function_match:
            return self._function(request, unquote(function_match["name"]), bool(function_match["rest"]))
        mapping_match = _MAPPING.match(request.path)
        if mapping_match:
            return self._mapping(request, mapping_match["uuid"] or "")
        return _error(404, "ResourceNotFoundException", f"{request.method} {request.path} is not served here")

    def _find(self, name: str) -> LocalFunction | None:
        return self.functions.get(name.rsplit(":", 1)[-1] if name.startswith("arn:") else name)

    def _function(self, request: HttpRequest, name: str, configuration: bool) -> HttpResponse:
        function = self._find(name)
        if function is None:
            return _error(404, "ResourceNotFoundException", f"Function not found: {name}")
        if request.method == "GET":
            body = function.configuration() if configuration else {"Configuration": function.configuration()}
            return json_response(200, body, "application/json")
        if request.method == "PUT" and configuration:
            return self._update(function, json.loads(request.body or b"{}"))
        return _error(400, "InvalidRequestContentException", f"{request.method} is not served here")

    def _update(self, function: LocalFunction, update: dict[str, Any]) -> HttpResponse:
        with self._lock:
            expected = update.get("RevisionId")
            if expected and expected != function.revision:
                return _error(
                    412,
                    "PreconditionFailedException",
                    "The Revision Id provided does not match the latest Revision Id. "
                    "Call the GetFunction/GetAlias API to retrieve the latest Revision Id",
                )
            if "Environment" in update:
                function.environment = dict(update["Environment"].get("Variables", {}))
            function.revision = str(uuid.uuid4())
            function.last_modified = datetime.now(UTC).isoformat(timespec="milliseconds")
            function.last_update_status = "InProgress"
            revision = function.revision
        timer = threading.Timer(UPDATE_SECONDS, self._settle, args=(function, revision))
        timer.daemon = True
        timer.start()
        return json_response(200, function.configuration(), "application/json")

    def _settle(self, function: LocalFunction, revision: str) -> None:
        with self._lock:
            if function.revision == revision:
                function.last_update_status = "Successful"

    def _mapping(self, request: HttpRequest, mapping_id: str) -> HttpResponse:
        if not mapping_id:  # ListEventSourceMappings
            name = request.query.get("FunctionName", "")
            function = self._find(name) if name else None
            found = [
                mapping.configuration(self.functions[mapping.function_name].arn)
                for mapping in self.mappings.values()
                if function is None or mapping.function_name == function.name
            ]
            return json_response(200, {"EventSourceMappings": found}, "application/json")
        mapping = self.mappings.get(mapping_id)
        if mapping is None:
            return _error(404, "ResourceNotFoundException", f"The resource you requested does not exist: {mapping_id}")
        if request.method == "PUT":
            update = json.loads(request.body or b"{}")
            if "Enabled" in update:
                mapping.enabled = bool(update["Enabled"])
            if "BatchSize" in update:
                mapping.batch_size = int(update["BatchSize"])
        return json_response(200, mapping.configuration(self.functions[mapping.function_name].arn), "application/json")


def _error(status: int, code: str, message: str) -> HttpResponse:
    return json_response(status, {"Type": "User", "message": message}, "application/json", **{"x-amzn-ErrorType": code})
