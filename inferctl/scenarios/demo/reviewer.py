"""The demo's scripted reviewer: reviews a session through the review page's API as a careful person would, with
the generated scenes' ground truth (a prediction is right when it boxes an object of its label at IoU 0.5 or
more; an object no right prediction covers is added as missed). Headless: what the tests and ``make demo
ARGS="--review scripted"`` use in place of a person."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

from inferctl.evaluation.groundtruth import Box
from inferctl.evaluation.matching import iou

Truth = Mapping[str, Sequence[tuple[str, Box]]]


def review_of(item: Mapping[str, Any], objects: Sequence[tuple[str, Box]]) -> dict[str, Any]:
    left = list(objects)
    verdicts = []
    for prediction in item["predictions"]:
        box = prediction.get("box")
        match = None
        if box:
            mine = (box["left"], box["top"], box["width"], box["height"])
            match = next((o for o in left if o[0] == prediction["name"] and iou(mine, o[1]) >= 0.5), None)
        if match:
            left.remove(match)
        verdicts.append(match is not None)
    added = [{"name": name, "box": {"left": b[0], "top": b[1], "width": b[2], "height": b[3]}} for name, b in left]
    return {"verdicts": verdicts, "added": added}


def review_all(base_url: str, token: str, truth: Truth) -> int:
    """Review every image of the session at ``base_url``, then write the manifest; how many were reviewed."""

    def call(path: str, body: Any = None) -> Any:
        request = urllib.request.Request(  # noqa: S310 - the review server on 127.0.0.1
            base_url + path,
            data=None if body is None else json.dumps(body).encode(),
            headers={"X-Review-Token": token, "Content-Type": "application/json"},
            method="GET" if body is None else "POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return json.loads(response.read())

    session = call("/api/session")
    for item in session["items"]:
        call("/api/review", {"key": item["key"], "review": review_of(item, truth.get(item["key"], ()))})
    finished = call("/api/finish", {})
    return int(finished["progress"]["reviewed"])
