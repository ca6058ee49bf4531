"""Run in a fresh process (the stack's glibc setting in its environment, as Lambda starts it): prepare one image
as the function would and print what the budget expected and what was really held.

argv: path, limits ("sagemaker" or "rekognition"). Prints one JSON line: route ("function": decoded in this
process; "child": in the bounded child, as the function decodes everything but small JPEGs and PNGs), cost (bytes
the budget reserved, or null when the header could not tell), peak (bytes of resident memory above the idle
process at the peak, or what the child reported holding), outcome (the error code, or "ok").
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from lambdas.contract.errors import PermanentError
from lambdas.contract.values import ObjectRef
from lambdas.inference import images
from lambdas.inference.backends.sagemaker import SageMakerBackend
from lambdas.inference.images.budget import MemoryBudget, budget_bytes
from lambdas.inference.images.prepare import IN_PROCESS_FORMATS, in_process_limit, prepare_source

LIMITS = {
    "rekognition": images.REKOGNITION_BYTES,
    "sagemaker": SageMakerBackend("ep", client=object())._limits,
}


def rss_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


class FileSource:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.budget: MemoryBudget | None = None
        self.ref = ObjectRef(bucket="b", key=f"test_images/{path.name}", size=path.stat().st_size)

    def read(self) -> bytes:
        return self.path.read_bytes()

    def read_head(self, length: int) -> bytes:
        with self.path.open("rb") as file:
            return file.read(length)


def main() -> None:
    path, limits = Path(sys.argv[1]), LIMITS[sys.argv[2]]
    source = FileSource(path)
    head = source.read_head(images.HEADER_BYTES)
    try:
        header = images.read_header(head, complete=len(head) < images.HEADER_BYTES)
    except PermanentError as exc:
        print(json.dumps({"cost": None, "peak": 0, "outcome": exc.code}))
        return
    cost = images.decode_cost(header, source.ref.size, limits, verify=True)
    budget = MemoryBudget(budget_bytes(1024))
    in_process = header is not None and header.format in IN_PROCESS_FORMATS
    if not in_process or cost is None or cost > in_process_limit(budget):
        source.budget = budget
        try:
            prepared = prepare_source(source, limits, verify=True)
        except PermanentError as exc:
            print(json.dumps({"route": "child", "cost": None, "peak": 0, "outcome": exc.code}))
            return
        facts = prepared.facts
        print(
            json.dumps(
                {
                    "route": facts.decoded_in,
                    "cost": facts.decode_reserved,
                    "peak": facts.decode_held,
                    "outcome": "ok",
                    "header": repr(header),
                }
            )
        )
        return
    import PIL.Image  # noqa: F401 - part of the idle process: only the work is measured

    Path("/proc/self/clear_refs").write_text("5")  # the peak (VmHWM) starts again from here
    idle = rss_kb("VmRSS")
    outcome = "ok"
    try:
        images.prepare_read(source.read, limits, verify=True)
    except PermanentError as exc:
        outcome = exc.code
    peak = (rss_kb("VmHWM") - idle) * 1024
    print(json.dumps({"route": "function", "cost": cost, "peak": peak, "outcome": outcome, "header": repr(header)}))


if __name__ == "__main__":
    main()
