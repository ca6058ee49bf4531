"""``make demo``: the whole pipeline on one machine, with no AWS account.

What is emulated: S3, SQS, KMS, Firehose (moto's server on 127.0.0.1), Lambda's SQS trigger, and the model
services (the local InvokeEndpoint and DetectCustomLabels APIs). The model behind them is a real pretrained
detector (OpenCV's Haar cascades: faces, eyes, cat faces, people, number plates) run on real photographs with
hand-checked ground truth (``inferctl/photos``), or, with ``--model stand-in``, the colour-blob stand-in on
generated scenes (deterministic: what most tests use). What is real: the Lambda handler and every module it
uses, including the backend adapters, Pillow image handling, thresholds, result documents and the partial batch
responses.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inferctl.console import counts_text, label_colours, number, outcome_report, table
from inferctl.emulator.models import cascade, emulations, stand_in
from inferctl.emulator.models import emulation as emulation_of
from inferctl.emulator.models.base import DETECTOR_ID, STAND_IN_ID, LocalLifecycle, LocalModel
from inferctl.emulator.stack import embedded_stack
from inferctl.evaluation import compare, groundtruth
from inferctl.photos import photo_samples
from inferctl.samples import Sample, demo_samples
from inferctl.stack import scoring, uploads
from inferctl.stack.engines import named_query
from inferctl.stack.target import Target, from_outputs
from lambdas.contract import rules
from lambdas.contract.backends import REGISTERED, spec
from lambdas.controller.decide import Decision
from stacks.config import StackConfig

EXIT_OK, EXIT_LOST = 0, 1


@dataclass(frozen=True)
class DemoModel:
    """What the demo serves and uploads: a local model, the name it is served under, its class names, and the
    images with their truth."""

    name: str
    title: str
    detect: LocalModel
    served_as: str  # the endpoint name (the ARN's version name): what every result's model_id says
    class_names: list[str]
    samples: Callable[[], Iterable[Sample]]
    truth: str  # what the ground truth is, for the evaluation's heading


BROKEN = Sample(key="broken/not-really-a-photo.jpg", data=b"This is a text file with an image suffix.\n")
MODELS = {
    "detector": DemoModel(
        "detector",
        "OpenCV's Haar cascades on real photographs",
        cascade.detect,
        DETECTOR_ID,
        cascade.CLASS_NAMES,
        lambda: [*photo_samples(), BROKEN],
        "the photographs' hand-checked ground truth",
    ),
    "stand-in": DemoModel(
        "stand-in",
        "the colour-blob stand-in on generated scenes",
        stand_in.detect,
        STAND_IN_ID,
        stand_in.CLASS_NAMES,
        demo_samples,
        "the scenes' ground truth",
    ),
}


def demo_config(
    overrides: dict[str, Any] | None = None, class_names: list[str] | None = None, served_as: str = STAND_IN_ID
) -> StackConfig:
    """cdk.json's configuration pointed at the demo model, plus overrides. SageMaker by default;
    ``-c backend=rekognition`` (or any registered backend) serves the same model through that service.
    ``class_names`` and ``served_as``: the served model's (the stand-in's by default)."""
    overrides = dict(overrides or {})
    names = class_names or stand_in.CLASS_NAMES
    backend = spec(rules.backend("backend", overrides.get("backend", "sagemaker"), REGISTERED))
    context: dict[str, Any] = {}
    for emulation in emulations().values():  # every backend's model points at the demo model; one is used
        context.update(emulation.demo_context(emulation.model_id(served_as), names))
    chosen = emulation_of(backend.name)
    context.update(chosen.demo_context(chosen.model_id(served_as), names))
    context.update(overrides)
    return StackConfig.from_cdk_json(context)


def served_lifecycles(served_as: str = STAND_IN_ID) -> dict[str, LocalLifecycle]:
    """What ``inferctl serve`` gives its Rekognition model: a lifecycle, RUNNING at first, so that ``model stop``
    and ``model start`` work and take their emulated time (3 s to start, 1 s to stop), as on AWS."""
    arn = emulation_of("rekognition").model_id(served_as)
    return {arn: LocalLifecycle("RUNNING", start_seconds=3.0, stop_seconds=1.0)}


def demo_models(local_model: LocalModel = stand_in.detect, served_as: str = STAND_IN_ID) -> dict[str, LocalModel]:
    """The local model under every backend's id for ``served_as`` (the stand-in's by default)."""
    return {registered.model_id(served_as): local_model for registered in emulations().values()}


# --challenger: the stand-in made worse (``stand_in.detect_noisy``) in shadow on every image, as a SageMaker endpoint.
CHALLENGER_ENDPOINT = f"{STAND_IN_ID}-noisy"
CHALLENGER_CONTEXT = {
    "challengerBackend": "sagemaker",
    "challengerSagemakerEndpointName": CHALLENGER_ENDPOINT,
    "challengerSagemakerResponseFormat": "object-detection",
    "challengerSagemakerClassNames": stand_in.CLASS_NAMES,
    "challengerSamplePercent": 100,
}
# --auto-start: the model starts stopped; the controller starts it for the uploaded images and stops it when idle.
AUTO_START_CONTEXT = {"backend": "rekognition", "autoMode": True, "modelIdleMinutes": 0.1, "retryDelayMaxSeconds": 2}


def run_demo(
    images_folder: Path | None,
    out: Path,
    overrides: dict[str, Any],
    timeout: float,
    auto_start: bool = False,
    challenger: bool = False,
    review: str | None = None,
    model_name: str = "detector",
) -> int:
    """``review``: after the results, a review round over them (``inferctl review``): "person" prints the page's
    URL and waits for the manifest, "scripted" reviews headless with the ground truth. ``model_name``: "detector"
    (OpenCV's cascades on real photographs) or "stand-in" (the colour-blob model on generated scenes)."""
    if auto_start:
        overrides = {**AUTO_START_CONTEXT, **overrides}
    if challenger:
        overrides = {**CHALLENGER_CONTEXT, **overrides}
        if model_name != "stand-in":
            print("--challenger: the stand-in and its noisy copy, on generated scenes", file=sys.stderr)
            model_name = "stand-in"
    demo = MODELS[model_name]
    config = demo_config(overrides, demo.class_names, demo.served_as)
    samples = list(demo.samples())
    if images_folder:
        items, ignored = uploads.image_items(images_folder, config.image_suffixes)
        for path in ignored:
            print(f"skipped {path}: its suffix does not trigger the pipeline", file=sys.stderr)
    else:
        items = [(sample.key, sample.data) for sample in samples]

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    print(
        f"Embedded stack: backend={config.backend} minConfidence={config.function.min_confidence:g} "
        f"batchSize={config.batch_size} maxReceiveCount={config.max_receive_count}; model: {demo.title} "
        f"(finds {', '.join(demo.class_names)})",
        file=sys.stderr,
    )
    lifecycles = {}
    if auto_start:
        model_id = emulation_of(config.backend).model_id(demo.served_as)
        lifecycles[model_id] = LocalLifecycle("STOPPED", start_seconds=3.0, stop_seconds=1.0)
        print("Auto mode: the model is STOPPED; the controller starts it when images wait", file=sys.stderr)
    served = demo_models(demo.detect, demo.served_as)
    if challenger:
        served[CHALLENGER_ENDPOINT] = stand_in.detect_noisy
    with embedded_stack(
        config,
        served,
        log_path=out / "lambda.log",
        capture_stdout=True,
        lifecycles=lifecycles,
        controller_seconds=0.5,
        on_decision=_show_decision if auto_start else None,
    ) as stack:
        target = from_outputs(stack.session, stack.state(), None, "embedded stack")
        deadline = time.monotonic() + 10
        while lifecycles and stack.mapping.enabled and time.monotonic() < deadline:
            time.sleep(0.1)  # as deployed: the controller has long paused the trigger of a stopped model
        sent = uploads.upload_many(target, items)
        found = uploads.wait_for(target, [u.key for u in sent], timeout)
        documents = [o.document for o in found.values() if o.document]
        # one colour per label in every picture and the report: the model's classes and the truth's labels
        colours = label_colours([*demo.class_names, *(name for sample in samples for name, _ in sample.objects)])
        uploads.download(target, documents, out, colours)
        table = outcome_table(target, [d["source"]["key"] for d in documents], out)
        stats = stack.trigger.stats
        evaluated = None if images_folder else close_the_loop(target, out, demo, samples, colours)
        truth = None if images_folder else samples
        reviewed = review_round(target, out, review, truth, colours) if review else None
        for lifecycle in lifecycles.values():
            _wait_for_idle_stop(lifecycle, config.controller.idle_minutes * 60 + 30)

    text, counts = outcome_report(found, strip_prefix=config.input_prefix)
    print(text)
    (out / "summary.json").write_text(
        json.dumps({"outcomes": counts, "batches": stats.batches, "messages": stats.received}, indent=2)
    )
    lost = counts.get("pending", 0)
    print(
        f"\n{len(found)} images: {counts_text(counts)}; {stats.batches} batches; results and annotated images in {out}/"
    )
    if table:
        print(table)
    if evaluated:
        print(evaluated)
    if reviewed:
        print(reviewed)
    if lost:
        print(f"LOST: {lost} images have no result, no error document and no dead letter", file=sys.stderr)
        return EXIT_LOST
    return EXIT_OK


def outcome_table(target: Target, keys: list[str], out: Path) -> str:
    """Every outcome is also a row of the outcome table (DuckDB here, Athena when deployed): copied beside the
    demo's folder (``out/outcome-table`` for ``make demo``), where ``inferctl query --embedded`` finds it after the
    demo. Beside ``out``, not in one fixed place: two demos at once (the tests) each keep their own."""
    from inferctl.stack import tables

    local = tables.wait_for_rows(target, keys, timeout=30, folder=out.parent / tables.DEFAULT_TABLE_FOLDER.name)
    answer = local.query(named_query("outcomes-per-day"))
    rows = sum(int(row[-1]) for row in answer.rows)
    example = "SELECT status, count(*) AS images FROM current_outcomes GROUP BY status"
    return (
        f"\nOutcome table: {rows} rows in {local.folder} (DuckDB; Athena when deployed). Ask in SQL:\n"
        "  inferctl query --embedded --named label-shares-per-day\n"
        f'  inferctl query --embedded "{example}"'
    )


def _show_decision(decision: Decision) -> None:
    if decision.action or decision.trigger_changed:
        trigger = "trigger resumed" if decision.trigger_enabled else "trigger paused"
        print(f"controller: {decision.reason} ({trigger})", file=sys.stderr)


def _wait_for_idle_stop(lifecycle: LocalLifecycle, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while lifecycle.status != "STOPPED" and time.monotonic() < deadline:
        time.sleep(0.2)
    ran = lifecycle.running_seconds()
    print(
        f"model {lifecycle.status} after idling; it ran {ran:.0f} s for {lifecycle.starts} start(s): "
        f"{' -> '.join(lifecycle.transitions)}",
        file=sys.stderr,
    )


def close_the_loop(
    target: Target, out: Path, demo: DemoModel, samples: list[Sample], colours: dict[str, str] | None = None
) -> str:
    """The samples' ground truth as a Ground Truth manifest, the evaluation of the results against it, and the
    report: what an ML engineer does with labelled data, on the demo's own."""
    manifest = out / "ground-truth.manifest"
    lines = [
        groundtruth.detection_manifest_line(
            target.bucket, target.input_prefix + sample.key, sample.size, list(sample.objects)
        )
        for sample in samples
        if sample.key != BROKEN.key
    ]
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    outcome = scoring.run(target, manifest)
    (out / "evaluation.json").write_text(json.dumps(outcome.evaluation.as_dict(), indent=2), encoding="utf-8")
    report = scoring.write_report(target, outcome, out / "report.html", f"Demo: {demo.title}", colours)
    recommended = outcome.evaluation.recommendations()
    text = table(scoring.rows(outcome.evaluation), scoring.HEADERS)
    pairs = ", ".join(f"{name} {number(value)}" for name, value in sorted(recommended.items())) or "none"
    thin = outcome.evaluation.thin()
    if thin:
        pairs += f" ({', '.join(thin)}: from fewer than 10 positives, a sketch; `--apply` wants --force)"
    compared = ""
    if outcome.comparison is not None:
        comparison = outcome.comparison
        (out / "comparison.json").write_text(json.dumps(comparison.as_dict(), indent=2), encoding="utf-8")
        compared = (
            f"\nModels compared on the {comparison.images} images both answered (same labels on "
            f"{100 * comparison.agreement:.0f}%):\n{table(compare.model_rows(comparison), compare.MODEL_HEADERS)}\n"
            f"{table(compare.label_rows(comparison), compare.LABEL_HEADERS)}\n{compare.advice(comparison)}\n"
        )
    return (
        f"\nEvaluation against {demo.truth} ({manifest}):\n{text}\n"
        f"recommended thresholds: {pairs}\n{compared}"
        f"apply them: inferctl thresholds set --label NAME=PERCENT ... (or evaluate --apply); report: {report}"
    )


def review_round(
    target: Target, out: Path, how: str, samples: list[Sample] | None, colours: dict[str, str] | None = None
) -> str:
    """A review round over the demo's results: the sample, the page (boxes in the run's label ``colours``), the
    manifest, the estimates."""
    from inferctl.scenarios.demo.reviewer import review_all
    from inferctl.stack import configuration, review_session
    from inferctl.stack.review_server import ReviewServer

    thresholds = configuration.live_settings(target).thresholds
    session = review_session.start(target, thresholds, out / "review" / "session.json", budget=50, seed=1)
    manifest = out / "review" / "reviewed.manifest"
    server = ReviewServer(target, session, manifest=manifest, colours=colours)
    with server.running():
        if how == "scripted" and samples is not None:
            truth = {
                target.input_prefix + sample.key: [
                    (name, (x / sample.size[0], y / sample.size[1], w / sample.size[0], h / sample.size[1]))
                    for name, (x, y, w, h) in sample.objects
                ]
                for sample in samples
            }
            review_all(f"http://127.0.0.1:{server.port}", server.token, truth)
        else:
            print(f"\nReview the results: open {server.url}\n(write the manifest on the page when done; Ctrl-C stops)")
            try:
                server.finished.wait()
            except KeyboardInterrupt:
                return f"review stopped; saved in {session.path}: `inferctl review --session {session.path}` resumes it"
        result = scoring.reviewed(target, manifest, 0.9)
    rows = [
        (
            now.label,
            f"{now.threshold:g}",
            "-"
            if now.precision.value is None
            else f"{100 * now.precision.value:.0f}% "
            f"({100 * (now.precision.low or 0):.0f}-{100 * (now.precision.high or 0):.0f})",
            "-"
            if now.recall.value is None
            else f"{100 * now.recall.value:.0f}% "
            f"({100 * (now.recall.low or 0):.0f}-{100 * (now.recall.high or 0):.0f})",
        )
        for now, _ in result.labels
    ]
    return (
        f"\nReviewed {result.reviewed} images ({manifest}); production estimates, 95% intervals:\n"
        f"{table(rows, ('label', 'threshold', 'precision', 'recall'))}"
    )
