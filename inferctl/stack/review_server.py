"""The review page and its API, served on 127.0.0.1 for one session (``review.py``).

Anyone who can reach the port and holds the URL is treated as hostile until shown otherwise, and every request
is checked before anything is read or written:

- every request: from 127.0.0.1, with a ``Host`` of 127.0.0.1 or localhost at this port (a page elsewhere cannot
  rebind a name to it), and the session's random token;
- GET (the page, the session, an image): the token in the query (the URL the user opened, and ``<img>``) or in the
  ``X-Review-Token`` header; images only of the sampled keys, under the input prefix;
- POST (a review, finishing): the token only in the ``X-Review-Token`` header, ``Content-Type:
  application/json``, and an ``Origin``, when the browser sends one, of this server. A cross-origin page cannot
  set that header or that type without a preflight this server never answers, so it cannot post, token or not;
- a body: ``Content-Length`` required (411), a number (400), at most ``MAX_BODY`` (413), all before a byte is read;
  then a JSON object of the expected shape (400 saying what is wrong).

Anything unexpected is a 500 with a JSON message, never a dropped connection. It writes nothing to the bucket.
"""

from __future__ import annotations

import contextlib
import io
import json
import secrets
import threading
from collections.abc import Iterable, Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from inferctl.console import LABEL_PALETTE, label_colours
from inferctl.evaluation import manifests
from inferctl.evaluation.report import upright
from inferctl.stack.errors import OperationFailed, UsageError
from inferctl.stack.review_session import Session, write_manifest
from inferctl.stack.target import Target

PAGE = Path(__file__).with_name("review_page.html")
MAX_BODY = 64 * 1024
DISPLAY_SIDE = 1600
TOKEN_HEADER = "X-Review-Token"  # noqa: S105 - the header's name, not a secret


class BadRequest(Exception):
    """A request refused before it changed anything: its status and why."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _display(data: bytes, transformations: Iterable[str]) -> tuple[bytes, str]:
    """The image as the browser shows it, upright as its boxes are (EXIF applied when it was), at most
    ``DISPLAY_SIDE`` on a side: JPEG (PNG when it has transparency)."""
    image = upright(data, transformations, DISPLAY_SIDE)
    buffer = io.BytesIO()
    if image.mode in ("RGBA", "LA", "P"):
        image.convert("RGBA").save(buffer, format="PNG")
        return buffer.getvalue(), "image/png"
    image.convert("RGB").save(buffer, format="JPEG", quality=88)
    return buffer.getvalue(), "image/jpeg"


class ReviewServer:
    """The review page and its API on 127.0.0.1; ``url`` carries the token."""

    def __init__(
        self,
        target: Target,
        session: Session,
        port: int = 0,
        manifest: Path | None = None,
        manifest_target: str = manifests.GROUND_TRUTH,
        colours: dict[str, str] | None = None,
    ) -> None:
        self.target = target
        self.session = session
        # one colour per label, as in the run's annotated images and report (console.label_colours)
        self.colours = colours
        self.token = secrets.token_urlsafe(24)
        self.manifest = manifest or session.path.with_name("reviewed.manifest")
        self.manifest_target = manifest_target
        self.warnings: list[str] = []  # what the last manifest left out or changed to fit, said
        self.finished = threading.Event()
        self._s3 = target.client("s3")
        handler = type("Handler", (_Handler,), {"review": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.port = self.httpd.server_address[1]

    def label_colours(self) -> dict[str, str]:
        """The colour of each label the model predicted in the sample: the run's own when given, otherwise chosen
        over those labels (fixed for the session: a label the reviewer adds takes a free colour on the page)."""
        predicted = {p["name"] for item in self.session.items for p in item["predictions"]}
        return {**label_colours(predicted), **(self.colours or {})}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/?token={self.token}"

    def allowed_hosts(self) -> set[str]:
        return {f"127.0.0.1:{self.port}", f"localhost:{self.port}"}

    def allowed_origins(self) -> set[str]:
        return {f"http://{host}" for host in self.allowed_hosts()}

    def image(self, key: str) -> tuple[bytes, str]:
        item = self.session.item(key)
        if item is None or not key.startswith(self.session.input_prefix):
            raise PermissionError(key)
        kwargs = {"Bucket": self.session.bucket, "Key": key}
        if item.get("version_id"):
            kwargs["VersionId"] = item["version_id"]
        data = self._s3.get_object(**kwargs)["Body"].read()
        return _display(data, item.get("transformations", []))

    def finish(self) -> Path:
        path, self.warnings = write_manifest(self.session, self.manifest, self.manifest_target)
        self.finished.set()
        return path

    @contextlib.contextmanager
    def running(self) -> Iterator[ReviewServer]:
        thread = threading.Thread(target=self.httpd.serve_forever, name="review-server", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.httpd.shutdown()
            self.httpd.server_close()
            thread.join()


class _Handler(BaseHTTPRequestHandler):
    review: ReviewServer
    server_version = "inferctl-review"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        return None  # the terminal shows the URL and progress, not every request

    # --- checks -------------------------------------------------------------------------------------------------

    def _check_origin_of_request(self) -> None:
        if self.client_address[0] != "127.0.0.1":
            raise BadRequest(HTTPStatus.FORBIDDEN, "local requests only")
        if self.headers.get("Host", "") not in self.review.allowed_hosts():
            raise BadRequest(HTTPStatus.FORBIDDEN, "unexpected Host")

    def _check_token(self, given: str) -> None:
        if not secrets.compare_digest(given.encode(), self.review.token.encode()):
            raise BadRequest(HTTPStatus.FORBIDDEN, "missing or wrong token")

    def _check_state_change(self) -> None:
        """A POST: the token in its header only, a JSON body, and this server's Origin when one is sent."""
        self._check_token(self.headers.get(TOKEN_HEADER) or "")
        origin = self.headers.get("Origin")
        if origin is not None and origin not in self.review.allowed_origins():
            raise BadRequest(HTTPStatus.FORBIDDEN, "cross-origin request refused")
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise BadRequest(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "the body must be application/json")

    def _body(self) -> dict[str, Any]:
        """The request's JSON object, its length checked before a byte is read."""
        declared = self.headers.get("Content-Length")
        if declared is None:
            raise BadRequest(HTTPStatus.LENGTH_REQUIRED, "Content-Length is required")
        if not declared.strip().isdigit():
            raise BadRequest(HTTPStatus.BAD_REQUEST, f"Content-Length must be a number of bytes, not {declared!r}")
        length = int(declared)
        if length > MAX_BODY:
            raise BadRequest(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"the body is limited to {MAX_BODY} bytes")
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            raise BadRequest(HTTPStatus.BAD_REQUEST, "the body is not JSON") from None
        if not isinstance(body, dict):
            raise BadRequest(HTTPStatus.BAD_REQUEST, f"the body must be a JSON object, not {type(body).__name__}")
        return body

    # --- answers ------------------------------------------------------------------------------------------------

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header(
            "Content-Security-Policy",
            "default-src 'none'; img-src 'self' data:; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
            "connect-src 'self'",
        )
        if status >= HTTPStatus.BAD_REQUEST:
            self.send_header("Connection", "close")  # a refused body is not read: nothing more on this connection
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def _send_json(self, value: Any, status: HTTPStatus = HTTPStatus.OK) -> None:
        self._send(status, json.dumps(value, ensure_ascii=False).encode(), "application/json; charset=utf-8")

    def _send_error(self, status: HTTPStatus, message: str) -> None:
        self._send_json({"error": message}, status)

    def _answer(self, respond: Any) -> None:
        try:
            respond()
        except BadRequest as refused:
            self._send_error(refused.status, refused.message)
        except Exception as exc:  # noqa: BLE001 - a bug answers 500 with why, the server carries on
            self._send_error(HTTPStatus.INTERNAL_SERVER_ERROR, f"{type(exc).__name__}: {exc}")

    def do_GET(self) -> None:
        self._answer(self._get)

    def do_POST(self) -> None:
        self._answer(self._post)

    def _get(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        self._check_origin_of_request()
        self._check_token(self.headers.get(TOKEN_HEADER) or (query.get("token") or [""])[0])
        session = self.review.session
        if url.path == "/":
            self._send(HTTPStatus.OK, PAGE.read_bytes(), "text/html; charset=utf-8")
        elif url.path == "/api/session":
            self._send_json(
                {
                    "items": session.items,
                    "reviews": session.reviews,
                    "labels": session.labels,
                    "colours": self.review.label_colours(),
                    "palette": list(LABEL_PALETTE),
                    "progress": session.progress(),
                    "thresholds": session.thresholds,
                }
            )
        elif url.path == "/api/image":
            key = (query.get("key") or [""])[0]
            try:
                body, content_type = self.review.image(key)
            except PermissionError:
                raise BadRequest(HTTPStatus.FORBIDDEN, "not an image of this review") from None
            except Exception as exc:  # noqa: BLE001 - the page shows the image as missing and says why
                raise BadRequest(HTTPStatus.BAD_GATEWAY, f"cannot read the image: {exc}") from None
            self._send(HTTPStatus.OK, body, content_type)
        else:
            raise BadRequest(HTTPStatus.NOT_FOUND, "no such page")

    def _post(self) -> None:
        url = urlsplit(self.path)
        self._check_origin_of_request()
        self._check_state_change()
        if url.path not in ("/api/review", "/api/finish"):
            raise BadRequest(HTTPStatus.NOT_FOUND, "no such endpoint")
        body = self._body()
        session = self.review.session
        if url.path == "/api/review":
            key, review = body.get("key"), body.get("review")
            if not isinstance(key, str) or not isinstance(review, dict):
                raise BadRequest(HTTPStatus.BAD_REQUEST, 'expected {"key": "<image key>", "review": {...}}')
            try:
                stored = session.record(key, review)
            except UsageError as exc:
                raise BadRequest(HTTPStatus.BAD_REQUEST, str(exc)) from None
            self._send_json({"stored": stored, "progress": session.progress()})
            return
        try:
            path = self.review.finish()
        except OperationFailed as exc:
            raise BadRequest(HTTPStatus.CONFLICT, str(exc)) from None
        self._send_json({"manifest": str(path), "progress": session.progress(), "warnings": self.review.warnings})
