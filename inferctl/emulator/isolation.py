"""Invoke the function the way Lambda does when memory or time matters: a process per execution environment,
the function's environment set before the interpreter starts, killed when the resident memory of everything it
runs (the function and the processes it starts) passes the function's memory size, or its invoke passes the
timeout. Either a fresh process per invocation, or warm environments reused from one invocation to the next and
frozen in between, as Lambda does.

An in-process invocation cannot be killed for memory: the embedded stack's threads share one process, and a
batch that would be killed on Lambda (a progressive JPEG's coefficient buffer, ten at once) reports ``ok``
there. ``ProcessInvoker`` is the embedded stack's ``isolation="process"`` (and ``"warm"``) and the test suite's
Lambda-faithful harness. Each invocation ends with a line like Lambda's ``REPORT`` (duration, memory size, max
memory used).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inferctl.emulator.lambda_bootstrap import DONE_MARKER, INVOKE_MARKER

BOOTSTRAP = Path(__file__).resolve().with_name("lambda_bootstrap.py")
REPOSITORY = Path(__file__).resolve().parents[3]
# Lambda's task root holds the asset: the ``lambdas`` package and nothing else of this repository.
TASK_ROOT = REPOSITORY / "out" / "lambda-task-root"
HANDLER = "lambdas.inference.handler.lambda_handler"
POLL_SECONDS = 0.005  # how often resident memory is read; the child's own peak is checked at the end too
INIT_SECONDS = 10.0  # Lambda's init phase limit (on-demand)
# Lambda sets the Runtime API's address in every runtime; the function reads it only to know it runs in an execution
# environment (collector.py, placement.py). Nothing listens there: the bootstrap is the runtime here.
RUNTIME_API = "127.0.0.1:9001"
MB = 1024 * 1024


# How each ending reads in Lambda's platform.report record.
PLATFORM_STATUS = {
    "ok": "success",
    "error": "error",
    "timeout": "timeout",
    "out_of_memory": "error",
    "crashed": "error",
}
PLATFORM_ERROR_TYPES = {"out_of_memory": "Runtime.OutOfMemory", "crashed": "Runtime.ExitError"}


@dataclass(frozen=True)
class Report:
    """What Lambda's REPORT line says about one invocation, and how it ended."""

    request_id: str
    duration_ms: float
    memory_size_mb: int
    max_memory_used_mb: int
    status: str  # "ok", "error" (the handler raised), "timeout", "out_of_memory", "crashed"
    detail: str = ""

    def platform_report(self) -> str:
        """The ``platform.report`` record Lambda writes to a function's log group in its JSON log format (the
        Telemetry API event schema: ``status`` success, error or timeout, with ``errorType`` on an error)."""
        record: dict[str, Any] = {
            "requestId": self.request_id,
            "metrics": {
                "durationMs": round(self.duration_ms, 2),
                "billedDurationMs": max(1, int(-(-self.duration_ms // 1))),
                "memorySizeMB": self.memory_size_mb,
                "maxMemoryUsedMB": self.max_memory_used_mb,
            },
            "status": PLATFORM_STATUS[self.status],
        }
        if self.status in PLATFORM_ERROR_TYPES:
            record["errorType"] = PLATFORM_ERROR_TYPES[self.status]
        moment = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z"
        return json.dumps({"time": moment, "type": "platform.report", "record": record})

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


def _status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, ValueError):
        pass
    return 0


def _children(pid: int) -> list[int]:
    """The processes ``pid`` started, from any of its threads."""
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except (FileNotFoundError, ProcessLookupError):
        return found
    for task in tasks:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError, ValueError):
            found += [int(child) for child in (task / "children").read_text().split()]
    return found


def _command(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return b""


class ProcessTree:
    """Resident memory of a process and every process below it, as Lambda counts an environment's memory. A process
    forked without a new program (the decode helper's children) shares its parent's pages until it writes them:
    only what it holds beyond its parent counts. The function's own children are looked for every
    ``REFRESH_POLLS`` reads (it has dozens of threads to ask); the processes below them at every read."""

    REFRESH_POLLS = 10

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._reads = 0
        self._top: list[int] = []
        self._command = b""

    def resident_kb(self) -> int:
        if self._reads % self.REFRESH_POLLS == 0:
            self._top, self._command = _children(self.pid), _command(self.pid)
        self._reads += 1
        root = _status_kb(self.pid, "VmRSS")
        total, stack = root, [(child, root, self._command) for child in self._top]
        while stack:
            current, parent_kb, parent_command = stack.pop()
            resident, command = _status_kb(current, "VmRSS"), _command(current)
            total += max(0, resident - parent_kb) if command and command == parent_command else resident
            stack += [(child, resident, command) for child in _children(current)]
        return total


class ProcessInvoker:
    """A callable ``(event, context) -> response`` for the local trigger: each invocation in a process of its own
    (``reuse=False``: a fresh one every time), or in warm execution environments (``reuse=True``: one process per
    container, frozen between invocations and thawed for the next, replaced after a kill or a configuration change,
    as Lambda does; ``container(i)`` selects the container, the trigger's ``bind``).

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
        reuse: bool = False,
    ) -> None:
        self.environment = environment
        self.memory_mb = memory_mb
        self.timeout_seconds = timeout_seconds
        self.write = write
        self.on_report = on_report
        self.handler = handler
        self.code_root = code_root or task_root()
        self.reuse = reuse
        self.reports: list[Report] = []
        self.cold_starts = 0
        self._lock = threading.Lock()
        self._container: contextvars.ContextVar[int] = contextvars.ContextVar("container", default=0)
        self._environments: dict[int, _Environment] = {}
        self._running: set[_Environment] = set()

    @contextlib.contextmanager
    def container(self, index: int) -> Iterator[None]:
        """Invocations in this block run in container ``index`` (its warm process, with ``reuse``)."""
        token = self._container.set(index)
        try:
            yield
        finally:
            self._container.reset(token)

    def __call__(self, event: dict[str, Any], context: Any = None) -> Any:
        with tempfile.TemporaryDirectory(prefix="lambda-invoke-") as folder:
            event_file, response_file = Path(folder) / "event.json", Path(folder) / "response.json"
            event_file.write_text(json.dumps(event), encoding="utf-8")
            report, outcome = self._run(event_file, response_file)
        with self._lock:
            self.reports.append(report)
        self.write(report.platform_report() + "\n")
        self.on_report(report)
        if report.status != "ok":
            raise FunctionError(report)
        return outcome.get("response")

    def end_running(self, status: str = "out_of_memory") -> int:
        """End every invocation running now as Lambda ends one (``status``: "out_of_memory" or "timeout"), whatever
        it is doing: for tests of what a killed batch leaves behind. Returns how many were running."""
        with self._lock:
            running = list(self._running)
        for environment in running:
            environment.ended_by = status
        return len(running)

    def close(self) -> None:
        """End every warm environment."""
        for environment in list(self._environments.values()):
            environment.end()
        self._environments.clear()

    def _env(self) -> dict[str, str]:
        env = {name: value for name, value in os.environ.items() if name in ("PATH", "HOME", "LANG", "TMPDIR")}
        env.update(self.environment())
        env["PYTHONPATH"] = str(self.code_root)
        env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] = str(self.memory_mb)
        env["AWS_LAMBDA_RUNTIME_API"] = RUNTIME_API
        env.setdefault("AWS_LAMBDA_FUNCTION_NAME", "function")
        env["LAMBDA_TASK_ROOT"] = str(self.code_root)
        return env

    def _environment_for_invoke(self) -> _Environment:
        env = self._env()
        index = self._container.get()
        current = self._environments.get(index) if self.reuse else None
        if current is not None and current.alive() and current.env == env:
            current.thaw()
            return current
        if current is not None:
            current.end()
        with self._lock:
            self.cold_starts += 1
        fresh = _Environment(self, env)
        if self.reuse:
            self._environments[index] = fresh
        return fresh

    def _run(self, event_file: Path, response_file: Path) -> tuple[Report, dict[str, Any]]:
        environment = self._environment_for_invoke()
        started = time.monotonic()
        request_id = str(uuid.uuid4())  # Lambda's, known whatever becomes of the invocation
        environment.begin(event_file, response_file, self.timeout_seconds, request_id, last=not self.reuse)
        limit_kb = self.memory_mb * 1024
        peak_kb, status, detail = 0, "ok", ""
        tree = ProcessTree(environment.process.pid)
        with self._lock:
            self._running.add(environment)
        while not environment.done():
            resident = tree.resident_kb()
            peak_kb = max(peak_kb, resident)
            now = time.monotonic()
            invoke_started = environment.invoke_started
            if environment.ended_by:
                status, detail = environment.ended_by, "Runtime exited: signal: killed (ended by the test)"
            elif resident > limit_kb:
                status, detail = "out_of_memory", f"Runtime exited: signal: killed ({resident // 1024} MB resident)"
            elif invoke_started is not None and now - invoke_started > self.timeout_seconds:
                status, detail = "timeout", f"Task timed out after {self.timeout_seconds:.2f} seconds"
            elif invoke_started is None and now - started > INIT_SECONDS:
                status, detail = "timeout", f"Init phase exceeded {INIT_SECONDS:.0f} seconds"
            if status != "ok":
                environment.end()
                break
            time.sleep(POLL_SECONDS)
        with self._lock:
            self._running.discard(environment)
        invoke_started = environment.invoke_started
        duration_ms = (time.monotonic() - (invoke_started if invoke_started is not None else started)) * 1000
        outcome: dict[str, Any] = {}
        if status == "ok":
            if response_file.exists() and environment.finished:
                outcome = json.loads(response_file.read_text(encoding="utf-8"))
                peak_kb = max(peak_kb, int(outcome.get("max_rss_kb", 0)))
                if peak_kb > limit_kb:
                    # Past the limit between two polls: Lambda would have killed it.
                    status, detail = "out_of_memory", f"Runtime exited: signal: killed ({peak_kb // 1024} MB peak)"
                    environment.end()
                elif "error" in outcome:
                    status, detail = "error", json.dumps(outcome["error"])
            else:
                code = environment.process.poll()
                status, detail = "crashed", f"Runtime exited with code {code} and no response"
                environment.end()
        if status in ("ok", "error") and self.reuse:
            environment.freeze()
        elif status in ("ok", "error"):
            environment.end()
        report = Report(
            request_id=request_id,
            duration_ms=duration_ms,
            memory_size_mb=self.memory_mb,
            max_memory_used_mb=-(-peak_kb // 1024),
            status=status,
            detail=detail,
        )
        return report, outcome


class _Environment:
    """One execution environment: the bootstrap's process (with its own process group: whatever it starts is part
    of it, frozen, thawed and killed with it)."""

    def __init__(self, invoker: ProcessInvoker, env: dict[str, str]) -> None:
        self.env = env
        self._write = invoker.write
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and script
            [sys.executable, "-P", str(BOOTSTRAP), invoker.handler],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=invoker.code_root,
            start_new_session=True,
        )
        self.invoke_started: float | None = None
        self.finished = False
        self.ended_by: str | None = None  # a test ends the invocation as Lambda would (``end_running``)
        self._done = threading.Event()
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()

    def alive(self) -> bool:
        return self.process.poll() is None

    def begin(
        self, event_file: Path, response_file: Path, timeout_seconds: float, request_id: str, *, last: bool
    ) -> None:
        """Start an invocation (``last``: the environment ends after it)."""
        self.invoke_started, self.finished = None, False
        self._done.clear()
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(f"{event_file} {response_file} {timeout_seconds} {request_id}\n")
            self.process.stdin.flush()
            if last:
                self.process.stdin.close()
        except (BrokenPipeError, OSError):
            self._done.set()

    def done(self) -> bool:
        if self._done.is_set():
            return True
        if self.process.poll() is None:
            return False
        self._reader.join(timeout=5)  # exited: what it printed last (the DONE marker) is read before judging
        return True

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            marker = line.strip()
            if marker == INVOKE_MARKER:
                self.invoke_started = time.monotonic()
                continue
            if marker == DONE_MARKER:
                self.finished = True
                self._done.set()
                continue
            self._write(line)
        self._done.set()

    def freeze(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGCONT)

    def end(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            self.process.wait(timeout=10)
        self._reader.join(timeout=5)
        self._done.set()
