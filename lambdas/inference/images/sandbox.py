"""Decoding under a hard memory bound: what a decoder really holds cannot be known for every format and layout,
so the images whose cost the budget does not know exactly are decoded in a child process that cannot hold more
than the budget reserved for it.

A helper process, started on first use (one per execution environment, like the function's threads), forks a
child per image. The child lowers its own address-space limit (``RLIMIT_AS``) to what was reserved before it
reads a byte of the image; opens it and says what it really is (format, size, mode, frames, layout: from the
whole file, not from its first bytes); and, when the function says so, decodes and prepares it. An allocation
past the bound fails inside the child (``MemoryError``, or a decoder's own "cannot allocate"): that image is
``IMAGE_TOO_LARGE`` and nothing else is touched. A child the function stops waiting for (its invocation is
ending, or the image takes longer than a model call may) is killed and its memory is back at once.

Why a helper and not ``fork()`` from the function: the function runs threads (records, model calls), and a fork
of a threaded process may inherit a lock some other thread held. The helper has one thread and imports Pillow
once, so a child costs a fork of a small process (about 1 ms) and no import. Lambda allows child processes,
Unix sockets and ``setrlimit``; nothing here needs ``/dev/shm``, which Lambda does not have.

Wire format, on a socket pair per image: frames of one kind byte, a 4-byte length and a payload.
    function -> child: ``O`` JSON {allowance}, ``D`` the image's bytes; later ``G`` JSON {limits, verify}
    child -> function: ``P`` its pid; ``H`` JSON header or ``E`` JSON error; after ``G``: ``R`` JSON facts and
                       ``D`` the prepared bytes, or ``E``
    helper -> function: ``X`` the child's wait status, once it has exited
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from lambdas.contract import errors
from lambdas.contract.errors import PermanentError, TransientError
from lambdas.contract.values import ImageFacts
from lambdas.inference.images.decode import ImageLimits, PreparedImage
from lambdas.inference.images.headers import Header, JpegLayout

_FRAME = struct.Struct(">cI")
# The child's own overhead besides the image (pages of the helper it writes to, its stack, Pillow's state):
# measured at 3-6 MB; part of every reservation made for a child.
CHILD_OVERHEAD = 8 * 1024 * 1024
# How long a child may take to say what the image is (open it, count its frames): the function never waits
# longer, whatever the invocation has left.
DESCRIBE_SECONDS = 10.0
# Worker start-up: Python, Pillow and its plugins (about 60 ms here).
START_SECONDS = 10.0
ROOT = Path(__file__).resolve().parents[3]  # the folder that holds the ``lambdas`` package (Lambda's task root)
_BOOT = "import sys; sys.path.insert(0, sys.argv[1]); from lambdas.inference.images.sandbox import serve; serve()"


class OutOfMemory(PermanentError):
    """The image needed more than the child's bound."""

    def __init__(self, message: str) -> None:
        super().__init__(errors.IMAGE_TOO_LARGE, message)


class Stopped(Exception):
    """The child was stopped at its deadline (``seconds``: how long it was given)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"stopped after {seconds:.1f} s")
        self.seconds = seconds


# --- the function's side ------------------------------------------------------------------------------------


class Sandbox:
    """The execution environment's helper process, started on first use and restarted if it ever dies."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._control: socket.socket | None = None
        self._helper: subprocess.Popen[bytes] | None = None

    def job(self, allowance: int, header: Header | None = None) -> Job:
        """A child for one image, bound to ``allowance`` bytes besides the helper's own pages. ``header``: what
        the function read of the image (the child uses its size to tell a decoder short of memory)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with self._lock:
                for attempt in range(2):
                    control = self._started()
                    try:
                        socket.send_fds(control, [b"J"], [theirs.fileno()])
                        break
                    except OSError:
                        self._stop()  # the helper is gone (killed): start another once
                        if attempt:
                            raise
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        job = Job(ours)
        size = {"width": header.width, "height": header.height} if header else {}
        job.send(b"O", json.dumps({"allowance": allowance, **size}).encode())
        return job

    def _started(self) -> socket.socket:
        if self._control is not None and self._helper is not None and self._helper.poll() is None:
            return self._control
        self._stop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)  # one message per image handed over
        env = {**os.environ, "SANDBOX_CONTROL_FD": str(theirs.fileno())}
        self._helper = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-I", "-c", _BOOT, str(ROOT)],
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,
            env=env,
        )
        theirs.close()
        ours.settimeout(START_SECONDS)
        try:
            if ours.recv(1) != b"!":  # the helper is ready: Pillow imported, plugins registered
                raise OSError("the decode helper did not start")
        except BaseException:
            ours.close()
            self._stop()
            raise
        ours.settimeout(None)
        self._control = ours
        return ours

    def _stop(self) -> None:
        if self._control is not None:
            with contextlib.suppress(OSError):
                self._control.close()
            self._control = None
        if self._helper is not None:
            with contextlib.suppress(OSError):
                self._helper.kill()
            with contextlib.suppress(Exception):
                self._helper.wait(timeout=5)
            self._helper = None

    def close(self) -> None:
        with self._lock:
            self._stop()


class Job:
    """One image's child, from the function's side. Close it (``with``) to kill the child if it still runs."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.pid: int | None = None
        self.status: int | None = None
        self.held: int | None = None  # the child's peak above where it started, as it reported it

    def __enter__(self) -> Job:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, kind: bytes, payload: bytes) -> None:
        self._sock.settimeout(None)
        self._sock.sendall(_FRAME.pack(kind, len(payload)))
        self._sock.sendall(payload)

    def describe(self, data: bytes, seconds: float) -> Header:
        """Hand the image over and learn what it really is (raises the child's PermanentError)."""
        self.send(b"D", data)
        kind, payload = self._answer(seconds)
        if kind != b"H":
            raise AssertionError(f"unexpected frame {kind!r}")
        return header_from(json.loads(payload))

    def prepare(self, limits: ImageLimits, *, verify: bool, seconds: float) -> PreparedImage:
        self.send(b"G", json.dumps({"limits": limits_as_dict(limits), "verify": verify}).encode())
        kind, payload = self._answer(seconds)
        if kind != b"R":
            raise AssertionError(f"unexpected frame {kind!r}")
        answer = json.loads(payload)
        self.held = answer.get("held")
        kind, data = self._frame(seconds)
        facts = answer["facts"]
        facts["transformations"] = tuple(facts["transformations"])
        return PreparedImage(data=data, content_format=answer["content_format"], facts=ImageFacts(**facts))

    def _answer(self, seconds: float) -> tuple[bytes, bytes]:
        """The child's next answer; its error raised as the function's own."""
        kind, payload = self._frame(seconds)
        if kind == b"E":
            error = json.loads(payload)
            self.held = error.get("held")
            if error.get("memory"):
                raise OutOfMemory(error["message"])
            raise PermanentError(error["code"], error["message"])
        return kind, payload

    def _frame(self, seconds: float) -> tuple[bytes, bytes]:
        """The next frame from the child; the helper's ``P``/``X`` are noted on the way. Raises Stopped (the child
        killed) when nothing complete came within ``seconds``, and PermanentError when the child ended without an
        answer (a decoder that crashed)."""
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                self.kill()
                raise Stopped(seconds)
            self._sock.settimeout(left)
            try:
                head = self._exactly(_FRAME.size)
                kind, length = _FRAME.unpack(head)
                payload = self._exactly(length)
            except TimeoutError:
                self.kill()
                raise Stopped(seconds) from None
            except EOFError:
                raise self._ended() from None
            if kind == b"P":
                (self.pid,) = struct.unpack(">i", payload)
            elif kind == b"X":
                (self.status,) = struct.unpack(">i", payload)
                raise self._ended()
            else:
                return kind, payload

    def _ended(self) -> PermanentError:
        """The child ended without answering: killed by a signal (a decoder's crash: often an allocation it did
        not check, under the bound) or exited (an interpreter that could not even report MemoryError)."""
        status = self.status
        if status is not None and os.WIFSIGNALED(status):
            return PermanentError(
                errors.IMAGE_UNREADABLE,
                f"the decoder crashed on this image (signal {os.WTERMSIG(status)}) and was stopped",
            )
        return OutOfMemory("the decoder ran out of the memory reserved for it and was stopped")

    def _exactly(self, length: int) -> bytes:
        chunks, left = [], length
        while left:
            chunk = self._sock.recv(min(left, 1 << 20))
            if not chunk:
                raise EOFError
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def kill(self) -> None:
        if self.pid is not None and self.status is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self.pid, 9)

    def close(self) -> None:
        self.kill()
        with contextlib.suppress(OSError):
            self._sock.close()


def limits_as_dict(limits: ImageLimits) -> dict[str, Any]:
    values = limits._asdict()
    values["native_formats"] = sorted(limits.native_formats)
    values["native_modes"] = sorted(limits.native_modes)
    return values


def limits_from(values: dict[str, Any]) -> ImageLimits:
    return ImageLimits(
        **{
            **values,
            "native_formats": frozenset(values["native_formats"]),
            "native_modes": frozenset(values["native_modes"]),
        }
    )


def header_as_dict(header: Header) -> dict[str, Any]:
    values = asdict(header)
    values["jpeg"] = header.jpeg._asdict() if header.jpeg else None
    return values


def header_from(values: dict[str, Any]) -> Header:
    jpeg = values.get("jpeg")
    layout = values.get("layout")
    return Header(
        format=values["format"],
        width=values["width"],
        height=values["height"],
        mode=values["mode"],
        orientation=values["orientation"],
        frames=values["frames"],
        jpeg=JpegLayout(jpeg["progressive"], tuple(tuple(s) for s in jpeg["sampling"]), jpeg["buffered"])
        if jpeg
        else None,
        layout=tuple(layout) if layout else None,
    )


# --- the helper's side ---------------------------------------------------------------------------------------


def serve() -> None:
    """The helper's loop: a child per image handed over, each reaped and its status reported."""
    import selectors
    import signal

    from lambdas.inference.images import decode

    _preload()
    control = socket.socket(fileno=int(os.environ.pop("SANDBOX_CONTROL_FD")))
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    children: dict[int, socket.socket] = {}
    selector = selectors.DefaultSelector()
    selector.register(control, selectors.EVENT_READ, "control")
    selector.register(wake_read, selectors.EVENT_READ, "wake")
    control.sendall(b"!")
    while True:
        for key, _ in selector.select():
            if key.data == "wake":
                os.read(wake_read, 4096)
                continue
            try:
                message, fds, _flags, _address = socket.recv_fds(control, 16, 4)
            except InterruptedError:
                continue
            if not message:
                return  # the function's process is gone: so are we (children finish or fail on their own)
            for fd in fds:
                job = socket.socket(fileno=fd)
                pid = os.fork()
                if pid == 0:  # the child
                    signal.set_wakeup_fd(-1)
                    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                    control.close()
                    os.close(wake_read)
                    os.close(wake_write)
                    code = _child(job, decode)
                    os._exit(code)
                children[pid] = job
        _reap(children)


def _preload() -> None:
    """Pillow and every plugin, imported once in the helper: a child starts with them."""
    from PIL import Image

    Image.init()
    from lambdas.inference.images import decode  # noqa: F401 - imported for the children


def _reap(children: dict[int, socket.socket]) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        job = children.pop(pid, None)
        if job is not None:
            with contextlib.suppress(OSError):
                job.sendall(_FRAME.pack(b"X", 4) + struct.pack(">i", status))
            job.close()


def _status(field: str) -> int:
    """A size from this process's /proc status, in bytes (VmSize: its address space, VmRSS and VmHWM: resident
    now and at the peak)."""
    with Path("/proc/self/status").open(encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _short_of_memory(bound: int, width: int | None, height: int | None) -> bool:
    """A decoder's failure that is likely its allocation's (libwebp says "could not create decoder object"):
    the image's pixels, four bytes each, no longer fit under the bound."""
    return bool(width and height) and _status("VmSize") + width * height * 4 > bound  # type: ignore[operator]


def _child(job: socket.socket, decode: Any) -> int:
    """One image: bound, open, describe, and (when told) prepare. Returns the exit code."""
    import resource

    def send(kind: bytes, payload: bytes) -> None:
        job.sendall(_FRAME.pack(kind, len(payload)))
        job.sendall(payload)

    def receive() -> tuple[bytes, bytes]:
        head = _recv_exactly(job, _FRAME.size)
        kind, length = _FRAME.unpack(head)
        return kind, _recv_exactly(job, length)

    def fail(error: PermanentError, memory: bool = False) -> int:
        answer = {"code": error.code, "message": error.message, "memory": memory, "held": held()}
        send(b"E", json.dumps(answer).encode())
        return 0

    def held() -> int:
        return max(0, _status("VmHWM") - resident)

    try:
        send(b"P", struct.pack(">i", os.getpid()))
        _, payload = receive()
        request = json.loads(payload)
        allowance = int(request["allowance"])
        width, height = request.get("width"), request.get("height")  # what the function read of the header
        with contextlib.suppress(OSError):
            Path("/proc/self/clear_refs").write_text("5")  # VmHWM counts from here: this image's peak
        resident = _status("VmRSS")
        bound = _status("VmSize") + allowance
        resource.setrlimit(resource.RLIMIT_AS, (bound, bound))
        too_large = OutOfMemory(f"it needs more than the {allowance / 2**20:.0f} MB reserved to decode it")
        try:
            _, data = receive()
            image = decode.open_image(data)
            width, height = image.size
            header = decode.describe(image)
            send(b"H", json.dumps(header_as_dict(header)).encode())
            _kind, payload = receive()
            request = json.loads(payload)
            prepared = decode.prepare_image(
                data, limits_from(request["limits"]), verify=bool(request["verify"]), image=image, header=header
            )
            del data, image
            answer = {"content_format": prepared.content_format, "facts": prepared.facts._asdict(), "held": held()}
            send(b"R", json.dumps(answer).encode())
            send(b"D", prepared.data)
        except MemoryError:
            return fail(too_large, True)
        except PermanentError as error:
            if error.code in (errors.IMAGE_UNREADABLE, errors.IMAGE_UNSUPPORTED) and _short_of_memory(
                bound, width, height
            ):
                return fail(too_large, True)
            return fail(error)
        except TransientError as error:  # nothing in decoding is transient; kept apart from a crash anyway
            return fail(PermanentError(error.code, error.message))
    except (EOFError, OSError):
        return 1  # the function stopped waiting (or was killed): nothing to answer
    return 0


def _recv_exactly(sock: socket.socket, length: int) -> bytes:
    chunks, left = [], length
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)
