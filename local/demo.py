"""``make demo``: the whole pipeline on one machine, with no AWS account.

What is emulated: S3, SQS and KMS (moto's server on 127.0.0.1), Lambda's SQS trigger (``event_source``),
and the model (a colour-blob detector behind a local InvokeEndpoint API). What is real: the Lambda
handler and every module it uses, including the SageMaker adapter, Pillow image handling, thresholds,
result documents and the partial batch responses.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

from . import operations
from .cli import EXIT_LOST, EXIT_USAGE, labels_text, table
from .samples import demo_samples
from .stack import demo_config, embedded_stack
from .target import from_outputs


def run_demo(images: Path | None, out: Path, overrides: dict[str, Any], timeout: float) -> int:
    config = demo_config(overrides)
    if images:
        files, ignored = operations.image_files(images, config.image_suffixes)
        for path in ignored:
            print(f"skipped {path}: its suffix does not trigger the pipeline", file=sys.stderr)
        items = [(p.relative_to(images).as_posix(), p.read_bytes()) for p in files]
        if not items:
            print(f"no images under {images}", file=sys.stderr)
            return EXIT_USAGE
    else:
        items = [(sample.key, sample.data) for sample in demo_samples()]

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    print(
        f"Embedded stack: backend={config.backend} minConfidence={config.min_confidence:g} "
        f"batchSize={config.batch_size} maxReceiveCount={config.max_receive_count}",
        file=sys.stderr,
    )
    with embedded_stack(config, log_path=out / "lambda.log", capture_stdout=True) as stack:
        target = from_outputs(stack.session, stack.state(), None, "embedded stack")
        uploads = operations.upload_many(target, items)
        found = operations.wait_for(target, [u.key for u in uploads], timeout)
        documents = [o.document for o in found.values() if o.document]
        operations.download(target, documents, out)
        stats = stack.trigger.stats

    rows = [(key[len(config.input_prefix) :], labels_text(o.document), o.state) for key, o in found.items()]
    print(table(rows, ("image", "labels (accepted) / error", "outcome")))
    counts: dict[str, int] = {}
    for outcome in found.values():
        counts[outcome.state] = counts.get(outcome.state, 0) + 1
    (out / "summary.json").write_text(
        json.dumps({"outcomes": counts, "batches": stats.batches, "messages": stats.received}, indent=2)
    )
    lost = counts.get("pending", 0)
    summary = ", ".join(f"{state}={count}" for state, count in sorted(counts.items()))
    print(f"\n{len(found)} images: {summary}; {stats.batches} batches; results and annotated images in {out}/")
    if lost:
        print(f"LOST: {lost} images have no result, no error document and no dead letter", file=sys.stderr)
        return EXIT_LOST
    return 0
