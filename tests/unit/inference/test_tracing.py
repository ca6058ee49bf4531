"""Tracing on costs the X-Ray SDK, not a sampling client nobody in Lambda calls (checked in a fresh interpreter:
the SDK builds its recorders at import)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

PROBE = """
import json, sys, time
started = time.perf_counter()
from lambdas.inference.tracing import make_tracing
tracing = make_tracing(True)
built_ms = (time.perf_counter() - started) * 1000
from aws_xray_sdk.core import xray_recorder
connector = xray_recorder.sampler._connector
lazy = type(connector._xray_client).__name__
service = connector._xray_client.meta.service_model.service_name  # built now, on first use
print(json.dumps({"lazy": lazy, "service": service, "built_ms": built_ms}))
"""


def test_the_xray_sampling_client_is_built_only_when_used():
    env = {"PYTHONPATH": str(ROOT), "AWS_DEFAULT_REGION": "us-east-1", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, cwd=ROOT, capture_output=True, text=True, check=True, timeout=120
    )
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    assert probe["lazy"] == "_LazyClient"
    assert probe["service"] == "xray"  # still a working client when something asks for it
