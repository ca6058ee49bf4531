"""Human review of production images: a sampled session, a local page to review it, a Ground Truth manifest.

``start`` draws the sample (``evaluation/sampling.py``) from the stack's results and saves a session file; every
review is saved to it as it is made, so a session can be closed and resumed. ``manifest_lines`` turns the
reviews into a SageMaker Ground Truth manifest (object detection when any box is involved, else multi-label
classification) that ``evaluate`` reads, with each image's stratum, inclusion probability and stratum size in
an ``inferctl-review`` attribute (Ground Truth ignores attributes without a ``-metadata`` partner), so
``evaluate --reviewed`` can weigh it, and Rekognition Custom Labels can train on it.

``ReviewServer`` serves the page on 127.0.0.1 only. Every request needs the session's random token (query
``token`` or header ``X-Review-Token``) and a ``Host`` of 127.0.0.1 or localhost at its port (a page elsewhere
cannot rebind a name to it); images are read only for the sampled keys, under the input prefix. It writes
nothing to the bucket unless asked (``upload``).
"""

from __future__ import annotations

import contextlib
import io
import json
import secrets
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from inferctl.evaluation import sampling
from inferctl.evaluation.groundtruth import GroundTruth, read_manifest
from inferctl.evaluation.report import upright
from inferctl.stack import outcomes, uploads
from inferctl.stack.errors import OperationFailed, UsageError
from inferctl.stack.target import Target
from lambdas.inference.core.events import result_key_for
from lambdas.inference.core.thresholds import Thresholds

PAGE = Path(__file__).with_name("review_page.html")
REVIEW_ATTRIBUTE = "inferctl-review"
LABEL_ATTRIBUTE = "reviewed"
JOB_NAME = "labeling-job/inferctl-review"
MAX_BODY = 64 * 1024
DISPLAY_SIDE = 1600


@dataclass
class Session:
    """What is reviewed and what has been said about it, saved as JSON after every change."""

    path: Path
    bucket: str
    input_prefix: str
    thresholds: dict[str, Any]
    sample: dict[str, Any]
    items: list[dict[str, Any]]
    reviews: dict[str, dict[str, Any]] = field(default_factory=dict)
    created_at: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def labels(self) -> list[str]:
        names = {p["name"] for item in self.items for p in item["predictions"]}
        names |= {a["name"] for review in self.reviews.values() for a in review.get("added", [])}
        return sorted(names)

    def item(self, key: str) -> dict[str, Any] | None:
        return next((item for item in self.items if item["key"] == key), None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "bucket": self.bucket,
            "input_prefix": self.input_prefix,
            "created_at": self.created_at,
            "thresholds": self.thresholds,
            "sample": self.sample,
            "items": self.items,
            "reviews": self.reviews,
        }

    def save(self) -> None:
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.path.with_suffix(".tmp")
            temporary.write_text(json.dumps(self.as_dict(), indent=1, ensure_ascii=False), encoding="utf-8")
            temporary.replace(self.path)  # a reader never sees half a file

    @classmethod
    def load(cls, path: Path) -> Session:
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(
            path=path,
            bucket=data["bucket"],
            input_prefix=data["input_prefix"],
            thresholds=data["thresholds"],
            sample=data["sample"],
            items=data["items"],
            reviews=data.get("reviews", {}),
            created_at=data.get("created_at", ""),
        )

    def record(self, key: str, review: Mapping[str, Any]) -> dict[str, Any]:
        """Check and store one image's review; UsageError saying what is wrong with it."""
        item = self.item(key)
        if item is None:
            raise UsageError(f"{key} is not in this review's sample")
        verdicts = review.get("verdicts")
        if not isinstance(verdicts, list) or len(verdicts) != len(item["predictions"]):
            raise UsageError(f"{key}: one verdict per prediction ({len(item['predictions'])})")
        if any(v not in (True, False) for v in verdicts):
            raise UsageError(f"{key}: every verdict is true (right) or false (wrong)")
        added = review.get("added", [])
        if not isinstance(added, list):
            raise UsageError(f"{key}: added is a list of objects")
        clean = []
        for found in added:
            box = found.get("box") if isinstance(found, dict) else None
            name = found.get("name") if isinstance(found, dict) else None
            if not isinstance(name, str) or not name.strip():
                raise UsageError(f"{key}: an added object needs a label")
            if box is not None and not _is_box(box):
                raise UsageError(f"{key}: a box is left, top, width, height as fractions of the image")
            clean.append({"name": name.strip(), "box": box})
        stored = {"verdicts": verdicts, "added": clean, "at": datetime.now(UTC).isoformat(timespec="seconds")}
        with self._lock:
            self.reviews[key] = stored
        self.save()
        return stored

    def progress(self) -> dict[str, int]:
        return {"reviewed": len(self.reviews), "total": len(self.items)}


def _is_box(box: Any) -> bool:
    if not isinstance(box, dict):
        return False
    try:
        left, top, width, height = (float(box[k]) for k in ("left", "top", "width", "height"))
    except (KeyError, TypeError, ValueError):
        return False
    return 0 <= left <= 1 and 0 <= top <= 1 and 0 < width <= 1 and 0 < height <= 1


def item_of(document: Mapping[str, Any], drawn: sampling.Drawn) -> dict[str, Any]:
    image = document.get("image") or {}
    predictions = [
        {"name": label["name"], "confidence": label["confidence"], "box": label.get("bounding_box"), "accepted": True}
        for label in document.get("labels", [])
    ] + [
        {"name": label["name"], "confidence": label["confidence"], "box": label.get("bounding_box"), "accepted": False}
        for label in document.get("candidates", [])
    ]
    return {
        "key": drawn.key,
        "stratum": drawn.stratum,
        "probability": drawn.probability,
        "version_id": (document.get("source") or {}).get("version_id"),
        "width": image.get("width"),
        "height": image.get("height"),
        "transformations": image.get("transformations") or [],
        "predictions": predictions,
    }


def start(
    target: Target, thresholds: Thresholds, path: Path, *, budget: int, seed: int, prefix: str | None = None
) -> Session:
    """A new session over the stack's results (ok ones: an error document has nothing to review). The results
    are streamed and only each one's key and stratum kept; the drawn ones are read again (memory follows the
    budget, not the bucket)."""
    strata = [
        (str(d["source"]["key"]), sampling.stratum(d, thresholds))
        for d in uploads.iter_results(target, prefix)
        if d.get("status") == "ok"
    ]
    if not strata:
        raise OperationFailed("no results to review under the input prefix: upload images first (inferctl upload)")
    sample = sampling.draw(strata, budget, seed)
    s3 = target.client("s3")
    documents = {
        drawn.key: document
        for drawn, (document, _) in outcomes.concurrently(
            sample.drawn, lambda d: outcomes.read_document(s3, target.bucket, result_key_for(d.key), d.key)
        )
        if document is not None
    }
    sample = sampling.Sample(
        [d for d in sample.drawn if d.key in documents], sample.population, sample.sizes, sample.seed
    )
    session = Session(
        path=path,
        bucket=target.bucket,
        input_prefix=prefix or target.input_prefix,
        thresholds=thresholds.as_dict(),
        sample=sample.as_dict(),
        items=[item_of(documents[drawn.key], drawn) for drawn in sample.drawn],
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    session.save()
    return session


def open_session(
    target: Target, thresholds: Thresholds, path: Path, *, budget: int, seed: int, prefix: str | None = None
) -> tuple[Session, bool]:
    """The session saved at ``path`` (resumed: True) or a new one. A saved session of another bucket is refused."""
    if path.exists():
        session = Session.load(path)
        if session.bucket != target.bucket:
            raise UsageError(f"{path} reviews {session.bucket}, not {target.bucket}: name another --session")
        return session, True
    return start(target, thresholds, path, budget=budget, seed=seed, prefix=prefix), False


# --- the manifest -------------------------------------------------------------------------------------------


def manifest_lines(session: Session) -> list[str]:
    """One Ground Truth line per reviewed image, in the sample's order."""
    boxes = any(p.get("box") for item in session.items for p in item["predictions"]) or any(
        a.get("box") for review in session.reviews.values() for a in review["added"]
    )
    names = session.labels
    class_map = {str(index): name for index, name in enumerate(names)}
    ids = {name: index for index, name in enumerate(names)}
    population = session.sample["population"]
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    lines = []
    for item in session.items:
        review = session.reviews.get(item["key"])
        if review is None:
            continue
        kept = [p for p, right in zip(item["predictions"], review["verdicts"], strict=True) if right]
        objects = [(p["name"], p.get("box")) for p in kept] + [(a["name"], a.get("box")) for a in review["added"]]
        entry: dict[str, Any] = {"source-ref": f"s3://{session.bucket}/{item['key']}"}
        metadata: dict[str, Any] = {
            "class-map": {str(ids[n]): n for n in sorted({n for n, _ in objects})} if boxes else class_map,
            "human-annotated": "yes",
            "creation-date": now,
            "job-name": JOB_NAME,
        }
        if boxes:
            width, height = int(item.get("width") or 0), int(item.get("height") or 0)
            entry[LABEL_ATTRIBUTE] = {
                "image_size": [{"width": width, "height": height, "depth": 3}],
                "annotations": [
                    {
                        "class_id": ids[name],
                        "left": round(box["left"] * width),
                        "top": round(box["top"] * height),
                        "width": max(1, round(box["width"] * width)),
                        "height": max(1, round(box["height"] * height)),
                    }
                    for name, box in objects
                    if box
                ],
            }
            metadata.update(type="groundtruth/object-detection", objects=[{"confidence": 1} for _, b in objects if b])
        else:
            classes = sorted({ids[name] for name, _ in objects})
            entry[LABEL_ATTRIBUTE] = classes
            metadata.update({"type": "groundtruth/image-classification-multilabel"})
            metadata["confidence-map"] = {str(class_id): 1 for class_id in classes}
        entry[f"{LABEL_ATTRIBUTE}-metadata"] = metadata
        entry[REVIEW_ATTRIBUTE] = {
            "stratum": item["stratum"],
            "probability": item["probability"],
            "population": population[item["stratum"]],
            "seed": session.sample["seed"],
        }
        lines.append(json.dumps(entry, ensure_ascii=False))
    return lines


def write_manifest(session: Session, path: Path) -> Path:
    lines = manifest_lines(session)
    if not lines:
        raise OperationFailed("nothing reviewed yet: the manifest would be empty")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def reviewed_sample(lines: Iterable[str]) -> sampling.Sample:
    """The sample a reviewed manifest stands for: each line's stratum and probability, each stratum's size."""
    drawn, population, seed = [], {}, 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        entry = json.loads(line)
        info = entry.get(REVIEW_ATTRIBUTE)
        if not isinstance(info, dict):
            raise UsageError(
                f"manifest line {number} has no {REVIEW_ATTRIBUTE} attribute: --reviewed reads what `inferctl review` "
                "writes (a labelling job's manifest has no sampling weights: evaluate it with --ground-truth)"
            )
        key = entry["source-ref"].split("/", 3)[3]
        drawn.append(sampling.Drawn(key, str(info["stratum"]), float(info["probability"])))
        population[str(info["stratum"])] = int(info["population"])
        seed = int(info.get("seed", 0))
    sizes: dict[str, int] = {}
    for item in drawn:
        sizes[item.stratum] = sizes.get(item.stratum, 0) + 1
    return sampling.Sample(drawn, population, sizes, seed)


def read_reviewed(path: Path) -> tuple[GroundTruth, sampling.Sample]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return read_manifest(lines), reviewed_sample(lines)


# --- the server ----------------------------------------------------------------------------------------------


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

    def __init__(self, target: Target, session: Session, port: int = 0, manifest: Path | None = None) -> None:
        self.target = target
        self.session = session
        self.token = secrets.token_urlsafe(24)
        self.manifest = manifest or session.path.with_name("reviewed.manifest")
        self.finished = threading.Event()
        self._s3 = target.client("s3")
        handler = type("Handler", (_Handler,), {"review": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.port = self.httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/?token={self.token}"

    def allowed_hosts(self) -> set[str]:
        return {f"127.0.0.1:{self.port}", f"localhost:{self.port}"}

    def image(self, key: str) -> tuple[bytes, str]:
        item = self.session.item(key)
        if item is None or not key.startswith(self.session.input_prefix):
            raise PermissionError(key)
        kwargs = {"Bucket": self.session.bucket, "Key": key}
        if item.get("version_id"):
            kwargs["VersionId"] = item["version_id"]
        data = self._s3.get_object(**kwargs)["Body"].read()
        return _display(data, item.get("transformations", []))

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

    def _authorised(self, query: dict[str, list[str]]) -> bool:
        if self.client_address[0] != "127.0.0.1":
            self._send_error(HTTPStatus.FORBIDDEN, "local requests only")
            return False
        if self.headers.get("Host", "") not in self.review.allowed_hosts():
            self._send_error(HTTPStatus.FORBIDDEN, "unexpected Host")
            return False
        given = self.headers.get("X-Review-Token") or (query.get("token") or [""])[0]
        if not secrets.compare_digest(given.encode(), self.review.token.encode()):
            self._send_error(HTTPStatus.FORBIDDEN, "missing or wrong token")
            return False
        return True

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
        self.end_headers()
        self.wfile.write(body)

    def _send_json(self, value: Any, status: HTTPStatus = HTTPStatus.OK) -> None:
        self._send(status, json.dumps(value, ensure_ascii=False).encode(), "application/json; charset=utf-8")

    def _send_error(self, status: HTTPStatus, message: str) -> None:
        self._send_json({"error": message}, status)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if not self._authorised(query):
            return
        session = self.review.session
        if url.path == "/":
            self._send(HTTPStatus.OK, PAGE.read_bytes(), "text/html; charset=utf-8")
        elif url.path == "/api/session":
            self._send_json(
                {
                    "items": session.items,
                    "reviews": session.reviews,
                    "labels": session.labels,
                    "progress": session.progress(),
                    "thresholds": session.thresholds,
                }
            )
        elif url.path == "/api/image":
            key = (query.get("key") or [""])[0]
            try:
                body, content_type = self.review.image(key)
            except PermissionError:
                self._send_error(HTTPStatus.FORBIDDEN, "not an image of this review")
                return
            except Exception as exc:  # noqa: BLE001 - the page shows the image as missing and says why
                self._send_error(HTTPStatus.BAD_GATEWAY, f"cannot read the image: {exc}")
                return
            self._send(HTTPStatus.OK, body, content_type)
        else:
            self._send_error(HTTPStatus.NOT_FOUND, "no such page")

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        if not self._authorised(parse_qs(url.query)):
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._send_error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "too large")
            return
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            self._send_error(HTTPStatus.BAD_REQUEST, "not JSON")
            return
        session = self.review.session
        if url.path == "/api/review":
            try:
                stored = session.record(str(body.get("key", "")), body.get("review") or {})
            except UsageError as exc:
                self._send_error(HTTPStatus.BAD_REQUEST, str(exc))
                return
            self._send_json({"stored": stored, "progress": session.progress()})
        elif url.path == "/api/finish":
            try:
                path = write_manifest(session, self.review.manifest)
            except OperationFailed as exc:
                self._send_error(HTTPStatus.CONFLICT, str(exc))
                return
            self.review.finished.set()
            self._send_json({"manifest": str(path), "progress": session.progress()})
        else:
            self._send_error(HTTPStatus.NOT_FOUND, "no such endpoint")
