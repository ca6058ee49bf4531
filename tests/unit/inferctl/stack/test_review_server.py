"""The review server validates before it touches anything: whoever holds the URL can neither knock it over nor
post from another origin. Each case answers with its status and a JSON message, and the connection is never just
dropped; the session is unchanged by every refused request."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from inferctl.stack.review_server import MAX_BODY, ReviewServer
from inferctl.stack.review_session import Session

KEY = "test_images/a.jpg"


class NoBucket:
    bucket = "b"

    def client(self, service: str) -> Any:
        return None


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ReviewServer]:
    session = Session(
        path=tmp_path / "session.json",
        bucket="b",
        input_prefix="test_images/",
        thresholds={},
        sample={"seed": 1, "population": {"none": 1}, "sizes": {"none": 1}, "drawn": []},
        items=[{"key": KEY, "stratum": "none", "probability": 1.0, "width": 640, "height": 480, "predictions": []}],
    )
    target: Any = NoBucket()
    with ReviewServer(target, session).running() as running:
        yield running


def post(
    server: ReviewServer,
    body: bytes | None,
    *,
    headers: dict[str, str] | None = None,
    path: str = "/api/review",
    length: str | None = "auto",
) -> tuple[int, dict[str, Any]]:
    """A POST as a client may send it: any Content-Length (or none), any headers; the status and JSON answer."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.putrequest("POST", path, skip_accept_encoding=True)
    sent = {
        "Host": f"127.0.0.1:{server.port}",
        "X-Review-Token": server.token,
        "Content-Type": "application/json",
        **(headers or {}),
    }
    for name, value in sent.items():
        if value:
            connection.putheader(name, value)
    if length == "auto" and body is not None:
        connection.putheader("Content-Length", str(len(body)))
    elif length not in ("auto", None):
        connection.putheader("Content-Length", length)
    connection.endheaders()
    if body:
        with _quietly():
            connection.send(body)
    response = connection.getresponse()
    answer = json.loads(response.read() or b"{}")
    connection.close()
    return response.status, answer


class _quietly:
    """Sending a body the server refused before reading it may meet a closed socket: that is the point."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, *_: Any) -> bool:
        return kind is not None and issubclass(kind, (BrokenPipeError, ConnectionResetError))


def review(verdicts: list[bool] | None = None, **extra: Any) -> bytes:
    return json.dumps({"key": KEY, "review": {"verdicts": verdicts or [], "added": [], **extra}}).encode()


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"[]", 400),
        (b"null", 400),
        (b'"x"', 400),
        (b"42", 400),
        (b'{"review": "x"}', 400),
        (b'{"key": 7, "review": {}}', 400),
        (b"not json", 400),
    ],
    ids=["list", "null", "string", "number", "review-not-an-object", "key-not-a-string", "not-json"],
)
def test_a_body_that_is_not_the_expected_object_is_400_with_why(server, body, status):
    answered, answer = post(server, body)
    assert (answered, bool(answer.get("error"))) == (status, True)
    assert server.session.reviews == {}


def test_content_length_is_checked_before_a_byte_is_read(server):
    big = b"x" * 300_000
    assert post(server, big, length="-1")[0] == 400  # negative: not read to EOF, not stored
    assert post(server, b"{}", length="abc")[0] == 400
    assert post(server, b"{}", length=None)[0] == 411
    assert post(server, big)[0] == 413
    assert len(big) > MAX_BODY
    assert server.session.reviews == {}


def test_a_state_change_needs_the_token_in_its_header_json_and_this_origin(server):
    body = review()
    token = server.token
    # a cross-origin text/plain POST, the token in the query: what a page elsewhere can send without a preflight
    status, _ = post(
        server,
        body,
        path=f"/api/review?token={token}",
        headers={"X-Review-Token": "", "Content-Type": "text/plain", "Origin": "http://evil.example"},
    )
    assert status == 403
    assert post(server, body, headers={"X-Review-Token": ""}, path=f"/api/review?token={token}")[0] == 403
    assert post(server, body, headers={"Content-Type": "text/plain"})[0] == 415
    assert post(server, body, headers={"Origin": "http://evil.example"})[0] == 403
    assert post(server, body, headers={"Origin": f"http://localhost:{server.port}"})[0] == 200  # the page's own
    assert post(server, body)[0] == 200  # no Origin (a script, curl): the header token is the proof


def test_boxes_off_the_image_or_too_small_are_refused(server):
    off_frame = {"name": "cat", "box": {"left": 0.9, "top": 0.1, "width": 0.5, "height": 0.2}}
    tiny = {"name": "cat", "box": {"left": 0.5, "top": 0.5, "width": 1 / 640, "height": 1 / 480}}
    fine = {"name": "cat", "box": {"left": 0.5, "top": 0.5, "width": 0.1, "height": 0.1}}
    for added, status in ((off_frame, 400), (tiny, 400), (fine, 200)):
        answered, answer = post(server, json.dumps({"key": KEY, "review": {"verdicts": [], "added": [added]}}).encode())
        assert answered == status, answer
    assert server.session.reviews[KEY]["added"] == [fine]


def test_a_bug_is_a_500_with_a_message_and_the_server_carries_on(server, monkeypatch):
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(server.session, "record", broken)
    status, answer = post(server, review())
    assert (status, answer["error"]) == (500, "RuntimeError: a bug")
    with socket.create_connection(("127.0.0.1", server.port), timeout=5):
        pass  # still listening
