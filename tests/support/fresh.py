"""A fresh interpreter for the function's code, as Lambda starts one: its environment set before it starts, a probe
run in it, and what the probe printed last (one JSON line) read back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from typing import Any, NamedTuple

from tests.support.paths import ROOT


def function_environment(variables: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without Lambda's own marker, the repository importable, tracing off, plus
    ``variables``: only what a test sets says whether it is an execution environment."""
    inherited = {name: value for name, value in os.environ.items() if name != "AWS_LAMBDA_RUNTIME_API"}
    return {
        **inherited,
        "PYTHONPATH": str(ROOT),
        "POWERTOOLS_TRACE_DISABLED": "true",
        "AWS_DEFAULT_REGION": "us-east-1",
        **variables,
    }


class Probed(NamedTuple):
    last: Any  # the probe's last line, as JSON
    lines: list[str]  # everything it printed (the function's log lines among them)


def run_probe(probe: str, variables: Mapping[str, str]) -> Probed:
    """Run ``probe`` in a fresh interpreter with ``function_environment(variables)``."""
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env=function_environment(variables),
        capture_output=True,
        text=True,
        check=True,
    )
    lines = done.stdout.strip().splitlines()
    return Probed(json.loads(lines[-1]), lines)
