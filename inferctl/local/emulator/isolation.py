"""Invoke the function the way Lambda does when memory or time matters: a fresh process per invocation, the
function's environment set before the interpreter starts, killed when its resident memory passes the
function's memory size or its invoke passes the timeout.

An in-process invocation cannot be killed for memory: the embedded stack's threads share one process, and a
batch that would be killed on Lambda (a progressive JPEG's coefficient buffer, ten at once) reports ``ok``
there. ``ProcessInvoker`` is the embedded stack's ``isolation="process"`` and the test suite's Lambda-faithful
harness. Each invocation ends with a line like Lambda's ``REPORT`` (duration, memory size, max memory used).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inferctl.local.emulator.lambda_bootstrap import INVOKE_MARKER

BOOTSTRAP = Path(__file__).resolve().with_name("lambda_bootstrap.py")
REPOSITORY = Path(__file__).resolve().parents[3]
# Lambda's task root holds the asset: the ``lambdas`` package and nothing else of this repository.
TASK_ROOT = REPOSITORY / "out" / "lambda-task-root"
HANDLER = "lambdas.inference.handler.lambda_handler"
POLL_SECONDS = 0.005  # how often resident memory is read; the child's own peak is checked at the end too
INIT_SECONDS = 10.0  # Lambda's init phase limit (on-demand)
MB = 1024 * 1024


@dataclass(frozen=True)
class Report:
    """What Lambda's REPORT line says about one invocation, and how it ended."""

    request_id: str
    duration_ms: float
    memory_size_mb: int
    max_memory_used_mb: int
    status: str  # "ok", "error" (the handler raised), "timeout", "out_of_memory", "crashed"
    detail: str = ""

    def line(self) -> str:
        text = (
            f"REPORT RequestId: {self.request_id}\tDuration: {self.duration_ms:.2f} ms\t"
            f"Memory Size: {self.memory_size_mb} MB\tMax Memory Used: {self.max_memory_used_mb} MB"
        )
        return text if self.status in ("ok", "error") else f"{text}\tStatus: {self.status}\t{self.detail}"


class FunctionError(RuntimeError):
    """The invocation failed as a whole (the trigger returns every message of the batch to the queue)."""

    def __init__(self, report: Report) -> None:
        super().__init__(f"{report.status}: {report.detail}")
        self.report = report


def task_root() -> Path:
    """A folder that holds only the ``lambdas`` package (a link to it), as the asset's root does on Lambda."""
    TASK_ROOT.mkdir(parents=True, exist_ok=True)
    link = TASK_ROOT / "lambdas"
    if not link.exists():
        with contextlib.suppress(FileExistsError):  # another process made it at the same moment
            link.symlink_to(REPOSITORY / "lambdas", target_is_directory=True)
    return TASK_ROOT


def _resident_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, ValueError):
        pass
    return 0


class ProcessInvoker:
    """A callable ``(event, context) -> response`` for the local trigger, one process per invocation.

    ``environment()`` is the function's environment at the moment of the invoke (its live configuration plus
    what points boto3 at the emulator); ``write`` receives everything the function prints and the REPORT line.
    """

    def __init__(
        self,
        environment: Callable[[], Mapping[str, str]],
        *,
        memory_mb: int,
        timeout_seconds: float,
        write: Callable[[str], Any] = lambda text: None,
        on_report: Callable[[Report], None] = lambda report: None,
        handler: str = HANDLER,
        code_root: Path | None = None,
    ) -> None:
        self.environment = environment
        self.memory_mb = memory_mb
        self.timeout_seconds = timeout_seconds
        self.write = write
        self.on_report = on_report
        self.handler = handler
        self.code_root = code_root or task_root()
        self.reports: list[Report] = []
        self._lock = threading.Lock()

    def __call__(self, event: dict[str, Any], context: Any = None) -> Any:
        with tempfile.TemporaryDirectory(prefix="lambda-invoke-") as folder:
            event_file, response_file = Path(folder) / "event.json", Path(folder) / "response.json"
            event_file.write_text(json.dumps(event), encoding="utf-8")
            report, outcome = self._run(event_file, response_file)
        with self._lock:
            self.reports.append(report)
        self.write(report.line() + "\n")
        self.on_report(report)
        if report.status != "ok":
            raise FunctionError(report)
        return outcome.get("response")

    def _env(self) -> dict[str, str]:
        env = {name: value for name, value in os.environ.items() if name in ("PATH", "HOME", "LANG", "TMPDIR")}
        env.update(self.environment())
        env["PYTHONPATH"] = str(self.code_root)
        env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] = str(self.memory_mb)
        env.setdefault("AWS_LAMBDA_FUNCTION_NAME", "function")
        env["LAMBDA_TASK_ROOT"] = str(self.code_root)
        return env

    def _run(self, event_file: Path, response_file: Path) -> tuple[Report, dict[str, Any]]:
        command = [sys.executable, "-P", str(BOOTSTRAP), self.handler, str(event_file), str(response_file)]
        command.append(str(self.timeout_seconds))
        started = time.monotonic()
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and script
            command,
            env=self._env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=self.code_root,
        )
        invoke_started: list[float] = []
        reader = threading.Thread(target=self._pump, args=(process, invoke_started), daemon=True)
        reader.start()
        limit_kb = self.memory_mb * 1024
        peak_kb, status, detail = 0, "ok", ""
        while process.poll() is None:
            resident = _resident_kb(process.pid)
            peak_kb = max(peak_kb, resident)
            now = time.monotonic()
            if resident > limit_kb:
                status, detail = "out_of_memory", f"Runtime exited: signal: killed ({resident // 1024} MB resident)"
            elif invoke_started and now - invoke_started[0] > self.timeout_seconds:
                status, detail = "timeout", f"Task timed out after {self.timeout_seconds:.2f} seconds"
            elif not invoke_started and now - started > INIT_SECONDS:
                status, detail = "timeout", f"Init phase exceeded {INIT_SECONDS:.0f} seconds"
            if status != "ok":
                process.kill()
                break
            time.sleep(POLL_SECONDS)
        process.wait()
        reader.join(timeout=5)
        duration_ms = (time.monotonic() - (invoke_started[0] if invoke_started else started)) * 1000
        outcome: dict[str, Any] = {}
        if status == "ok":
            if response_file.exists():
                outcome = json.loads(response_file.read_text(encoding="utf-8"))
                peak_kb = max(peak_kb, int(outcome.get("max_rss_kb", 0)))
                if peak_kb > limit_kb:
                    # Past the limit between two polls: Lambda would have killed it.
                    status, detail = "out_of_memory", f"Runtime exited: signal: killed ({peak_kb // 1024} MB peak)"
                elif "error" in outcome:
                    status, detail = "error", json.dumps(outcome["error"])
            else:
                status, detail = "crashed", f"Runtime exited with code {process.returncode} and no response"
        report = Report(
            request_id=str(outcome.get("request_id", "-")),
            duration_ms=duration_ms,
            memory_size_mb=self.memory_mb,
            max_memory_used_mb=-(-peak_kb // 1024),
            status=status,
            detail=detail,
        )
        return report, outcome

    def _pump(self, process: subprocess.Popen[str], invoke_started: list[float]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if line.strip() == INVOKE_MARKER:
                invoke_started.append(time.monotonic())
                continue
            self.write(line)
