"""Human review of production images: a sampled session, a local page to review it, a Ground Truth manifest.

``start`` draws the sample (``evaluation/sampling.py``) from the stack's results and saves a session file; every
review is saved to it as it is made, so a session can be closed and resumed. ``manifest`` turns the reviews into
a manifest (``evaluation/manifests.py``): SageMaker Ground Truth's (object detection when any box is involved,
else multi-label classification), which ``evaluate`` reads, or Rekognition Custom Labels' (``--target
rekognition``), which it trains on; each line carries its image's stratum, inclusion probability and stratum
size in an ``inferctl-review`` attribute (ignored without a ``-metadata`` partner), so ``evaluate --reviewed``
can weigh it.

The page and its API are ``review_server.py``'s.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from inferctl.evaluation import manifests, orientation, sampling
from inferctl.evaluation.groundtruth import GroundTruth, read_manifest
from inferctl.stack import concurrency, outcomes, uploads
from inferctl.stack.errors import OperationFailed, UsageError
from inferctl.stack.target import Target
from lambdas.contract.events import result_key_for
from lambdas.contract.thresholds import Thresholds

PAGE = Path(__file__).with_name("review_page.html")
REVIEW_ATTRIBUTE = "inferctl-review"
LABEL_ATTRIBUTE = "reviewed"
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
        size = upright_size(item)
        clean = []
        for found in added:
            box = found.get("box") if isinstance(found, dict) else None
            name = found.get("name") if isinstance(found, dict) else None
            if not isinstance(name, str) or not name.strip():
                raise UsageError(f"{key}: an added object needs a label")
            if box is not None:
                why = box_problem(box, size)
                if why:
                    raise UsageError(f"{key}: {name.strip()}'s box {why}")
            clean.append({"name": name.strip(), "box": box})
        stored = {"verdicts": verdicts, "added": clean, "at": datetime.now(UTC).isoformat(timespec="seconds")}
        with self._lock:
            self.reviews[key] = stored
        self.save()
        return stored

    def progress(self) -> dict[str, int]:
        return {"reviewed": len(self.reviews), "total": len(self.items)}


MIN_BOX_PIXELS = 2  # a box smaller than this in the image's pixels is a slip of the mouse, not an object


def upright_size(item: Mapping[str, Any]) -> tuple[int, int] | None:
    """The image's size as the page shows it (upright), when the result recorded it."""
    width, height = item.get("width"), item.get("height")
    if not isinstance(width, int) or not isinstance(height, int) or width <= 0 or height <= 0:
        return None
    return orientation.upright_size(width, height, orientation.applied(item.get("transformations") or []))


def box_problem(box: Any, size: tuple[int, int] | None) -> str | None:
    """Why a reviewed box cannot stand (not left, top, width, height fractions; off the image; too small to be an
    object), or None."""
    if not isinstance(box, dict):
        return "is not an object of left, top, width and height"
    try:
        left, top, width, height = (float(box[k]) for k in ("left", "top", "width", "height"))
    except (KeyError, TypeError, ValueError):
        return "needs left, top, width and height as fractions of the image"
    if not all(0 <= value <= 1 for value in (left, top)) or not (0 < width <= 1 and 0 < height <= 1):
        return "needs left, top, width and height as fractions of the image (0-1)"
    if left + width > 1 + 1e-6 or top + height > 1 + 1e-6:
        return "goes past the image's edge"
    if size is not None and (width * size[0] < MIN_BOX_PIXELS or height * size[1] < MIN_BOX_PIXELS):
        return f"is smaller than {MIN_BOX_PIXELS} x {MIN_BOX_PIXELS} px"
    return None


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
        "format": image.get("format"),
        "width": image.get("width"),
        "height": image.get("height"),
        "transformations": image.get("transformations") or [],
        "predictions": predictions,
    }


def start(
    target: Target,
    thresholds: Thresholds,
    path: Path,
    *,
    budget: int,
    seed: int,
    prefix: str | None = None,
    results: Iterable[Mapping[str, Any]] | None = None,
) -> Session:
    """A new session over the stack's results (ok ones: an error document has nothing to review). The results
    are streamed and only each one's key and stratum kept; the drawn ones are read again (memory follows the
    budget, not the bucket). ``results``: where the results come from (the outcome table's), instead of the scan."""
    strata = [
        (str(d["source"]["key"]), sampling.stratum(d, thresholds))
        for d in (uploads.iter_results(target, prefix) if results is None else results)
        if d.get("status") == "ok"
    ]
    if not strata:
        raise OperationFailed("no results to review under the input prefix: upload images first (inferctl upload)")
    try:
        sample = sampling.draw(strata, budget, seed)
    except sampling.BudgetTooSmall as exc:
        raise UsageError(str(exc)) from None
    s3 = target.client("s3")
    documents = {
        drawn.key: document
        for drawn, (document, _) in concurrency.concurrently(
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
    target: Target,
    thresholds: Thresholds,
    path: Path,
    *,
    budget: int,
    seed: int,
    prefix: str | None = None,
    documents: Callable[[], Iterable[Mapping[str, Any]]] | None = None,
) -> tuple[Session, bool]:
    """The session saved at ``path`` (resumed: True) or a new one (its results from ``documents()`` when given). A
    saved session of another bucket is refused."""
    if path.exists():
        session = Session.load(path)
        if session.bucket != target.bucket:
            raise UsageError(f"{path} reviews {session.bucket}, not {target.bucket}: name another --session")
        return session, True
    found = documents() if documents is not None else None
    return start(target, thresholds, path, budget=budget, seed=seed, prefix=prefix, results=found), False


# --- the manifest -------------------------------------------------------------------------------------------


def reviewed_images(session: Session) -> list[manifests.Reviewed]:
    """The reviewed images, in the sample's order: what the reviewer kept and added, with the stratum, inclusion
    probability and stratum size each stands for (the ``inferctl-review`` attribute ``--reviewed`` reads)."""
    population = session.sample["population"]
    images = []
    for item in session.items:
        review = session.reviews.get(item["key"])
        if review is None:
            continue
        kept = [p for p, right in zip(item["predictions"], review["verdicts"], strict=True) if right]
        objects = [(p["name"], _box(p.get("box"))) for p in kept] + [
            (a["name"], _box(a.get("box"))) for a in review["added"]
        ]
        images.append(
            manifests.Reviewed(
                bucket=session.bucket,
                key=item["key"],
                width=int(item.get("width") or 0),
                height=int(item.get("height") or 0),
                format=item.get("format") or _format_of(item["key"]),
                orientation=orientation.applied(item.get("transformations") or []),
                objects=objects,
                extra={
                    REVIEW_ATTRIBUTE: {
                        "stratum": item["stratum"],
                        "probability": item["probability"],
                        "population": population[item["stratum"]],
                        "seed": session.sample["seed"],
                    }
                },
            )
        )
    return images


def _box(box: Mapping[str, Any] | None) -> orientation.Box | None:
    return (box["left"], box["top"], box["width"], box["height"]) if box else None


_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".gif": "GIF", ".bmp": "BMP"}


def _format_of(key: str) -> str | None:
    """A session from before items recorded their format: the key's suffix says what the image most likely is."""
    return _FORMATS.get(Path(key).suffix.lower(), "TIFF" if key.lower().endswith((".tif", ".tiff")) else None)


def manifest(session: Session, target: str = manifests.GROUND_TRUTH) -> manifests.Written:
    """The reviewed images as a manifest ``target`` accepts (detection when any box is involved)."""
    boxes = any(p.get("box") for item in session.items for p in item["predictions"]) or any(
        a.get("box") for review in session.reviews.values() for a in review["added"]
    )
    return manifests.write(reviewed_images(session), target, boxes=boxes, attribute=LABEL_ATTRIBUTE)


def manifest_lines(session: Session) -> list[str]:
    """One Ground Truth line per reviewed image, in the sample's order."""
    return manifest(session).lines


def write_manifest(session: Session, path: Path, target: str = manifests.GROUND_TRUTH) -> tuple[Path, list[str]]:
    """Write the manifest for ``target``; returns its path and what was left out or changed to fit, said."""
    written = manifest(session, target)
    if not written.lines:
        raise OperationFailed(
            "nothing reviewed yet: the manifest would be empty"
            if not session.reviews
            else "every reviewed image was left out: " + "; ".join(written.warnings[:3])
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(written.lines) + "\n", encoding="utf-8")
    return path, written.warnings


def upload_key(manifest: Path, moment: datetime) -> str:
    """Where ``--upload`` puts a manifest: under ``reviews/``, dated, so that no round replaces another's."""
    return f"reviews/{moment.strftime('%Y%m%dT%H%M%SZ')}-{manifest.name}"


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
