"""``make bench``: measure, print one table, write ``out/bench.json``.

Rows (targets from the performance issue):
1. cold start: fresh interpreter, import + first one-record batch, vs. a seed-like baseline, same fakes
2. handler overhead per image: zero-latency backend, in-memory storage, the process placed as in Lambda
3. a batch of 10 with a 100 ms backend: wall time and ratio to one call
4. peak RSS above idle for a 12 MP and a 50 MP JPEG on each backend path
4b. peak RSS growth for one batch of ten 88-megapixel PNGs (9400 x 9400 RGBA, ~0.4 MB each), 1024 MB function
4c. the same for ten 6000 x 4000 progressive 4:4:4 JPEGs (~0.3 MB each, 144 MB of coefficients each to decode)
5. end-to-end throughput on the embedded stack, 500 images
5b. a burst of 1,000 images against a model limited to 5 calls/s (default settings): dead letters, throttled
    calls, wall time
6. the Lambda deployment package, zipped, and what dominates it
7. cost per 1,000 images: the serverless part measured on the embedded stack (calls, time, log bytes per
   image), the model per backend and traffic profile, and auto mode's saving (``benchmarks/cost_per_image.py``);
   7a-7c the function's own S3 calls, SQS requests and invocations per image
8. the critical path per image and upload-to-result with realistic per-call latencies (``latency.py``)
9. the operator tools over 10,000 and 100,000 result documents: time and memory (``operator_scale.py``)
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from benchmarks import cost_per_image, latency, operator_scale, outcome_table, record

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "out"
ARN = "arn:aws:rekognition:us-east-1:123456789012:project/p/version/v.2024-01-01T00.00.00/1700000000000"


def s3_body(bucket: str, key: str, etag: str = "e", size: int = 1000) -> str:
    return json.dumps(
        {
            "Records": [
                {
                    "eventSource": "aws:s3",
                    "eventName": "ObjectCreated:Put",
                    "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": size, "eTag": etag}},
                }
            ]
        }
    )


def sqs_event(bodies: list[str]) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m{i}",
                "receiptHandle": f"r{i}",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
                "awsRegion": "us-east-1",
            }
            for i, body in enumerate(bodies)
        ]
    }


def stack_default(field: str) -> Any:
    """A ``StackConfig`` field's default: what a deploy without that context gets."""
    from stacks.config import StackConfig

    return StackConfig.__dataclass_fields__[field].default


def lambda_environment() -> dict[str, str]:
    """What Lambda sets in the function's environment that the function reads, for the stack's default memory."""
    from inferctl.emulator.isolation import RUNTIME_API

    memory_mb = stack_default("lambda_memory_mb")
    return {"AWS_LAMBDA_RUNTIME_API": RUNTIME_API, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb)}


@contextlib.contextmanager
def as_in_lambda() -> Iterator[None]:
    """This process on the CPUs the function's execution environment keeps (``placement.py``), then as it was."""
    from lambdas.inference import placement

    allowed = os.sched_getaffinity(0)
    placement.keep_on_one_cpu(lambda_environment())
    try:
        yield
    finally:
        os.sched_setaffinity(0, allowed)


def child(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    result = subprocess.run([sys.executable, *args], env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    last: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return last


# --- 1. cold start -----------------------------------------------------------------------------------------


# Each run starts the baseline (plain, then with the function's collector pause), the handler and its variants back
# to back, and the row is the median of the pairs' ratios. Single pairs on this 2-core machine spread from 0.85x to
# 1.34x: 15 runs moved the median between 1.08 and 1.19 from one run of the row to the next; 41 halve that spread.
COLD_RUNS = 41


def cold_start(runs: int) -> dict[str, Any]:
    from inferctl.emulator.server import embedded_aws
    from stacks.bytecode import compile_bytecode

    # The handler runs from copies of the package as the asset holds it, nothing written beside them (Lambda's
    # /var/task is read-only): one with the bytecode bundling compiles where the runtime's interpreter is at hand
    # (this interpreter stands in for it), one with sources only, which every cold start compiles again. Without
    # the copies, whether this machine had fresh .pyc files beside the sources moved the row by 0.15x. boto3 is
    # precompiled on every side, as in the runtime.
    assets = Path(tempfile.mkdtemp(prefix="cold-assets-"))
    for form in ("bytecode", "sources"):
        shutil.copytree(ROOT / "lambdas", assets / form / "lambdas", ignore=shutil.ignore_patterns("__pycache__"))
    compile_bytecode(sys.executable, assets / "bytecode")
    with contextlib.ExitStack() as cleanup, embedded_aws() as emulator:
        cleanup.callback(shutil.rmtree, assets, True)
        s3 = emulator.session().client("s3")
        s3.create_bucket(Bucket="bench")
        from PIL import Image

        buffer = io.BytesIO()
        Image.new("RGB", (640, 480), (30, 120, 200)).save(buffer, format="JPEG")
        env = {
            **os.environ,
            "PYTHONDONTWRITEBYTECODE": "1",
            "REKOGNITION_MODEL_ARN": ARN,
            "AWS_ENDPOINT_URL_REKOGNITION": emulator.endpoint_url,
            "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon here
            "POWERTOOLS_SERVICE_NAME": "image-inference",
            "POWERTOOLS_METRICS_NAMESPACE": "ImageInference",
            "AWS_RETRY_MODE": "standard",
            "AWS_MAX_ATTEMPTS": "3",
        }

        def on(form: str, **changes: str | None) -> dict[str, str]:
            shaped = {**env, "PYTHONPATH": f"{assets / form}{os.pathsep}{ROOT}", **changes}
            return {key: value for key, value in shaped.items() if value is not None}

        # With tracing on, Powertools loads the X-Ray SDK (outside Lambda it then stays inactive). The handler runs
        # with what Lambda sets that it reads (placement.py keeps it on one CPU).
        function = lambda_environment()
        variants = (
            ("baseline", "benchmarks/cold_baseline.py", on("sources")),
            ("baseline_paused", "benchmarks/cold_baseline.py", on("sources", COLD_BASELINE_COLLECTOR_PAUSED="1")),
            ("handler", "benchmarks/cold_handler.py", on("bytecode", **function)),
            ("handler_xray", "benchmarks/cold_handler.py", on("bytecode", **function, POWERTOOLS_TRACE_DISABLED=None)),
            ("handler_sources", "benchmarks/cold_handler.py", on("sources", **function)),
        )
        timings: dict[str, list[float]] = {name: [] for name, _, _ in variants}
        cpu: dict[str, list[float]] = {name: [] for name, _, _ in variants}
        for run in range(runs):
            for name, script, variant_env in variants:
                key = f"test_images/{name}-{run}.jpg"
                etag = s3.put_object(Bucket="bench", Key=key, Body=buffer.getvalue())["ETag"].strip('"')
                # the object's own ETag, as S3 sends it: the handler's first batch then does what the baseline does
                # (the model call and the result's PUT), not settle the record as superseded after a HEAD
                event = sqs_event([s3_body("bench", key, etag=etag, size=len(buffer.getvalue()))])
                timed = child([script, json.dumps(event)], variant_env)
                s3.head_object(Bucket="bench", Key=key + ".json")  # the result was written: the work was done
                timings[name].append(timed["seconds"])
                cpu[name].append(timed["cpu_seconds"])

    def paired(name: str, baseline: str = "baseline") -> float:
        """The median of each run's ratio to the baseline run just before it: a machine that slows down or speeds
        up during the row moves both sides of a pair alike."""
        pairs = zip(timings[name], timings[baseline], strict=True)
        return statistics.median(mine / base for mine, base in pairs)

    def ms(name: str) -> float:
        return statistics.median(timings[name]) * 1000

    return {
        "baseline_ms": ms("baseline"),
        "handler_ms": ms("handler"),
        "handler_xray_ms": ms("handler_xray"),
        "handler_sources_ms": ms("handler_sources"),
        "ratio": paired("handler"),
        "ratio_xray": paired("handler_xray"),
        "ratio_sources": paired("handler_sources"),
        "baseline_paused_ms": ms("baseline_paused"),
        "ratio_same_collector": paired("handler", "baseline_paused"),
        "ratio_of_medians": ms("handler") / ms("baseline"),
        "cpu_ratio": statistics.median(cpu["handler"]) / statistics.median(cpu["baseline"]),
        "runs": runs,
        "samples_ms": {k: [round(v * 1000, 1) for v in vs] for k, vs in timings.items()},
    }


# --- 2 and 3. in-process handler ---------------------------------------------------------------------------


class NullStorage:
    """Storage that holds nothing: the handler's own overhead is what is measured."""

    def read(self, ref: Any) -> bytes:
        return b""

    def read_head(self, ref: Any, length: int) -> bytes:
        return b""

    def head_current(self, bucket: str, key: str, length: int, *, whole: bool = False) -> Any:
        from lambdas.inference.storage import Head

        return Head(b"", None, None, None)

    def read_rest(self, ref: Any, head: Any) -> bytes:
        return b""

    def read_result(self, bucket: str, key: str) -> Any:
        return None

    def write_json(self, bucket: str, key: str, document: dict[str, Any], **conditions: Any) -> None:
        json.dumps(document)


class TakingFirehose:
    """PutRecordBatch that takes every record at once."""

    def __init__(self) -> None:
        self.records = 0
        self.calls = 0

    def put_record_batch(self, DeliveryStreamName: str, Records: list[dict[str, bytes]]) -> dict[str, Any]:
        self.calls += 1
        self.records += len(Records)
        return {"FailedPutCount": 0, "RequestResponses": [{"RecordId": "r"} for _ in Records]}


class SleepingBackend:
    name = "bench"
    model_id = "bench-model"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def needs_bytes(self, ref: Any) -> bool:
        return False

    def detect(self, image: Any, thresholds: Any) -> Any:
        from lambdas.contract.values import Detection, ImageFacts, Label

        if self.seconds:
            time.sleep(self.seconds)
        return Detection(labels=(Label("cat", 91.0),), image=ImageFacts(sent_as="s3_object"), latency_ms=0.0)


@contextlib.contextmanager
def in_process_handler(backend: SleepingBackend) -> Iterator[Callable[[dict[str, Any]], dict[str, Any]]]:
    """The real lambda_handler with this backend and in-memory storage, on the CPUs Lambda's execution environment
    keeps; logs and metrics discarded."""
    from inferctl.emulator.runtime import LambdaContext
    from lambdas.contract.outcome_stream import OutcomeStream
    from lambdas.contract.settings import Settings
    from lambdas.inference import environment, handler, telemetry

    settings = Settings.from_env(
        {"REKOGNITION_MODEL_ARN": ARN, "RECORD_CONCURRENCY": "10", "OUTCOME_STREAM_NAME": "bench-outcomes"}
    )
    runtime = environment.build_runtime(settings, backend=backend, storage=NullStorage())
    # each outcome's row encoded and put, a batch a call, to a stream that takes every row at once (as S3 here)
    runtime.stream = OutcomeStream("bench-outcomes", client=TakingFirehose())
    stream = telemetry.logger.registered_handler.stream  # type: ignore[attr-defined]
    with open(os.devnull, "w") as devnull, environment.bound(runtime), as_in_lambda():
        telemetry.logger.registered_handler.setStream(devnull)  # type: ignore[attr-defined]

        def invoke(event: dict[str, Any]) -> dict[str, Any]:
            with contextlib.redirect_stdout(io.StringIO()), environment.bound(runtime):  # EMF metrics lines
                response: dict[str, Any] = handler.lambda_handler(event, LambdaContext())
            return response

        try:
            yield invoke
        finally:
            telemetry.logger.registered_handler.setStream(stream)  # type: ignore[attr-defined]


def overhead_per_image(repeats: int, batches: int = 100) -> dict[str, Any]:
    with in_process_handler(SleepingBackend(0.0)) as invoke:
        return _overhead(invoke, repeats, batches)


def _overhead(invoke: Callable[[dict[str, Any]], dict[str, Any]], repeats: int, batches: int) -> dict[str, Any]:
    samples = []
    counter = 0
    for _ in range(repeats):
        events = []
        for _ in range(batches):
            bodies = [s3_body("b", f"test_images/{counter + i}.jpg", etag=str(counter + i)) for i in range(10)]
            counter += 10
            events.append(sqs_event(bodies))
        started = time.perf_counter()
        for event in events:
            assert invoke(event) == {"batchItemFailures": []}
        samples.append((time.perf_counter() - started) / (batches * 10))
    return {"us_per_image": statistics.median(samples) * 1e6, "samples_us": [round(s * 1e6, 1) for s in samples]}


def batch_concurrency(repeats: int) -> dict[str, Any]:
    samples = []
    with in_process_handler(SleepingBackend(0.1)) as invoke:
        for run in range(repeats):
            event = sqs_event([s3_body("b", f"test_images/c{run}-{i}.jpg", etag=f"{run}-{i}") for i in range(10)])
            started = time.perf_counter()
            assert invoke(event) == {"batchItemFailures": []}
            samples.append(time.perf_counter() - started)
    wall = statistics.median(samples)
    return {
        "wall_ms": wall * 1000,
        "ratio_to_one_call": wall / 0.1,
        "samples_ms": [round(s * 1000, 1) for s in samples],
    }


# --- 4. memory ---------------------------------------------------------------------------------------------


def big_jpeg(path: Path, width: int, height: int) -> Path:
    if path.exists():
        return path
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    base = Image.radial_gradient("L").resize((width, height)).convert("RGB")
    noise = Image.effect_noise((width, height), 60).convert("RGB")
    Image.blend(base, noise, 0.5).save(path, format="JPEG", quality=90)
    return path


def memory(repeats: int) -> dict[str, Any]:
    images = {
        "12MP": big_jpeg(OUT / "bench-images" / "12mp.jpg", 4000, 3000),
        "50MP": big_jpeg(OUT / "bench-images" / "50mp.jpg", 8660, 5774),
    }
    env = {**os.environ, "PYTHONPATH": str(ROOT), "POWERTOOLS_TRACE_DISABLED": "true"}
    results: dict[str, Any] = {}
    for backend in ("rekognition", "sagemaker"):
        for size, path in images.items():
            runs = [child(["benchmarks/memory_child.py", backend, str(path)], env) for _ in range(repeats)]
            above = statistics.median((r["peak_kb"] - r["idle_kb"]) / 1024 for r in runs)
            results[f"{backend} {size}"] = {
                "peak_above_idle_mb": above,
                "bytes_read": runs[0]["bytes_read"],
                "file_bytes": path.stat().st_size,
                "seconds": statistics.median(r["seconds"] for r in runs),
            }
    return results


def large_png(path: Path) -> Path:
    """9400 x 9400 RGBA (88 MP, 353 MB decoded), mostly flat so that it compresses to about 0.4 MB."""
    if path.exists():
        return path
    from PIL import Image, ImageDraw

    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGBA", (9400, 9400), (40, 120, 200, 255))
    ImageDraw.Draw(image).ellipse((2000, 2000, 6000, 6000), fill=(250, 200, 40, 255))
    image.save(path)
    return path


def progressive_jpeg(path: Path) -> Path:
    """6000 x 4000 progressive 4:4:4 (about 0.3 MB): 144 MB of DCT coefficients to decode, at any scale."""
    if path.exists():
        return path
    from PIL import Image, ImageDraw

    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.linear_gradient("L").resize((6000, 4000)).convert("RGB")
    ImageDraw.Draw(image).ellipse((1000, 700, 3000, 2700), fill=(200, 40, 30))
    image.save(path, format="JPEG", quality=85, progressive=True, subsampling=0)
    return path


def large_batch(memory_mb: int = 1024, kind: str = "png") -> dict[str, Any]:
    """Ten large images in one batch through the real handler (SageMaker path), in a fresh process with the
    platform environment the stack sets (its glibc setting included): 88-MP RGBA PNGs (``png``) or
    24-MP progressive JPEGs (``progressive``)."""
    from lambdas.contract.settings import platform_environment

    if kind == "png":
        path = large_png(OUT / "bench-images" / "88mp.png")
    else:
        path = progressive_jpeg(OUT / "bench-images" / "24mp-progressive.jpg")
    env = {**os.environ, **platform_environment(tracing=False, max_attempts=3), "PYTHONPATH": str(ROOT)}
    run = child(["benchmarks/batch_memory_child.py", str(path), str(memory_mb)], env)
    growth = (run["peak_kb"] - run["idle_kb"]) / 1024
    return {
        "memory_mb": memory_mb,
        "peak_growth_mb": growth,
        "budget_peak_mb": run["budget_peak_mb"],
        "outcomes": run["statuses"],
        "failed": run["failed"],
        "file_bytes": path.stat().st_size,
        "seconds": run["seconds"],
    }


# --- 5. throughput -----------------------------------------------------------------------------------------


def throughput(images: int) -> dict[str, Any]:
    from inferctl.scenarios.faults import FaultPlan, run

    # No faults planned, and the stack's default function timeout (FaultPlan.function_timeout_seconds says why)
    plan = FaultPlan(
        images=images,
        throttle_rate=0.0,
        not_ready_bursts=(),
        corrupt_rate=0.0,
        write_fail_rate=0.0,
        function_timeout_seconds=int(stack_default("lambda_timeout_seconds")),
    )
    from lambdas.contract.outcome_stream import OutcomeStream

    puts: list[int] = []  # the function's PutRecordBatch calls (records in each), as its stream makes them
    original = OutcomeStream._put

    def counted(self: OutcomeStream, records: Any) -> set[str]:
        puts.append(len(records))
        return original(self, records)

    OutcomeStream._put = counted  # type: ignore[method-assign]
    try:
        with tempfile.TemporaryDirectory() as folder:
            report = run(plan, Path(folder), timeout=900, progress=False)
    finally:
        OutcomeStream._put = original  # type: ignore[method-assign]
    return {
        "rows_put": sum(puts),
        "stream_calls": len(puts),
        "images": images,
        "seconds": report.seconds,
        "images_per_second": images / report.seconds,
        "lost": len(report.problems),
        "outcomes": dict(report.outcomes),
        "batches": report.batches,
    }


def burst(images: int) -> dict[str, Any]:
    from inferctl.scenarios.burst import run

    return run(count=images, per_second=5.0, timeout=1800, progress=False).as_dict()


# --- 6. package size ---------------------------------------------------------------------------------------


def package_size() -> dict[str, Any]:
    from stacks.bundling import lambda_bundling

    with tempfile.TemporaryDirectory() as folder:
        asset = Path(folder) / "asset"
        asset.mkdir()
        lambda_bundling().try_bundle(str(asset))
        archive = Path(folder) / "asset.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
            for path in sorted(asset.rglob("*")):
                zipped.write(path, path.relative_to(asset))
        by_top: dict[str, int] = {}
        with zipfile.ZipFile(archive) as zipped:
            for info in zipped.infolist():
                top = info.filename.split("/")[0]
                top = top.split("-")[0] if top.endswith(".dist-info") else top
                by_top[top] = by_top.get(top, 0) + info.compress_size
        unzipped = sum(p.stat().st_size for p in asset.rglob("*") if p.is_file())
        zipped_size = archive.stat().st_size
    largest = sorted(by_top.items(), key=lambda item: -item[1])[:5]
    return {
        "zipped_mb": zipped_size / 1e6,
        "unzipped_mb": unzipped / 1e6,
        "largest_zipped_mb": {name: round(size / 1e6, 2) for name, size in largest},
    }


# --- table -------------------------------------------------------------------------------------------------


def size_mp(label: str) -> int:
    return int(label.split()[-1].removesuffix("MP"))


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats and 100 images (a smoke run)")
    parser.add_argument(
        "--record",
        action="store_true",
        help="also copy the run to docs/bench.json and rewrite docs/performance.md's table from it",
    )
    args = parser.parse_args(argv)
    if args.quick and args.record:
        parser.error("--record keeps a full run: drop --quick")
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")  # row 6 loads CDK
    # What the stack sets on the function; tracing off: there is no X-Ray daemon here.
    os.environ.update(
        {
            "POWERTOOLS_SERVICE_NAME": "image-inference",
            "POWERTOOLS_METRICS_NAMESPACE": "ImageInference",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        }
    )
    repeats = 3 if args.quick else 7
    steps: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        ("cold_start", lambda: cold_start(3 if args.quick else COLD_RUNS)),
        ("overhead", lambda: overhead_per_image(repeats)),
        ("batch_of_10", lambda: batch_concurrency(repeats)),
        ("memory", lambda: memory(1 if args.quick else 3)),
        ("large_batch", large_batch),
        ("progressive_batch", lambda: large_batch(kind="progressive")),
        ("throughput", lambda: throughput(100 if args.quick else 500)),
        ("burst", lambda: burst(200 if args.quick else 1000)),
        ("package", package_size),
        ("cost", lambda: cost_per_image.measure(50 if args.quick else 200)),
        # In its own process: threads an earlier row leaves behind would add their GIL waits to every sleep
        ("latency", lambda: child(["-m", "benchmarks.latency", "20" if args.quick else "50"], dict(os.environ))),
        ("operators", lambda: operator_scale.measure((10_000,) if args.quick else (10_000, 100_000))),
        (
            "outcome_table",
            lambda: outcome_table.measure(*((5_000, 4) if args.quick else (outcome_table.GENERATED, 20))),
        ),
    ]
    results: dict[str, Any] = {}
    for name, step in steps:
        print(f"measuring {name}...", file=sys.stderr)
        results[name] = step()

    cold, over, batch, mem, big, prog, thr, bst, pkg, spent, critical_path, scale, outcome_rows = (
        results[name] for name, _ in steps
    )
    rows = [
        (
            "1 cold start (import + first batch; the asset's bytecode, as bundled where python3.14 is)",
            f"{cold['handler_ms']:.0f} ms vs baseline {cold['baseline_ms']:.0f} ms: {cold['ratio']:.2f}x "
            f"(median of {cold['runs']} paired runs; CPU time {cold['cpu_ratio']:.2f}x) "
            "(tracing off)",
            "<= 1.15x",
            verdict(cold["ratio"] <= 1.15),
        ),
        (
            "1b cold start with the stack's default (tracing on: X-Ray SDK, sampling client lazy)",
            f"{cold['handler_xray_ms']:.0f} ms = {cold['ratio_xray']:.2f}x baseline",
            "<= 1.30x",
            verdict(cold["ratio_xray"] <= 1.30),
        ),
        (
            "1c cold start against the baseline with the function's collector pause (its own work only)",
            f"{cold['handler_ms']:.0f} ms vs {cold['baseline_paused_ms']:.0f} ms = {cold['ratio_same_collector']:.2f}x",
            "report",
            "-",
        ),
        (
            "1s cold start of an asset bundled without python3.14 (sources only: compiled at every cold start)",
            f"{cold['handler_sources_ms']:.0f} ms = {cold['ratio_sources']:.2f}x baseline (tracing off)",
            "report",
            "-",
        ),
        (
            "2 handler overhead per image (its outcome row encoded and put, a call a batch)",
            f"{over['us_per_image']:.0f} us",
            "<= 200 us",
            verdict(over["us_per_image"] <= 200),
        ),
        (
            "3 batch of 10, 100 ms backend",
            f"{batch['wall_ms']:.0f} ms = {batch['ratio_to_one_call']:.2f}x one call",
            "<= 1.5x",
            verdict(batch["ratio_to_one_call"] <= 1.5),
        ),
    ]
    for label, row in mem.items():
        backend, _ = label.split()
        read = f"read {row['bytes_read'] / 1024:.0f} KiB of {row['file_bytes'] / 1e6:.1f} MB"
        measured = f"+{row['peak_above_idle_mb']:.1f} MB RSS, {read}"
        if backend == "rekognition" and size_mp(label) <= 16:
            target, ok = "no image data read (header only)", row["bytes_read"] <= 64 * 1024
        elif backend == "rekognition":
            # Beyond 4096 px Rekognition cannot take the object: it must be read and downscaled.
            target, ok = "report (> 4096 px: must be read)", True
        else:
            target, ok = "<= 64 MB above idle", row["peak_above_idle_mb"] <= 64
        rows.append((f"4 peak memory, {label}", measured, target, verdict(ok)))
    every = sum(1 for status in big["outcomes"] if status) == len(big["outcomes"]) and not big["failed"]
    rows.append(
        (
            "4b ten 88-MP PNGs (0.4 MB each) in one batch, 1024 MB",
            f"+{big['peak_growth_mb']:.0f} MB RSS, {len(big['outcomes'])} outcomes in {big['seconds']:.0f} s",
            "<= 700 MB, every image an outcome",
            verdict(big["peak_growth_mb"] <= 700 and every),
        )
    )
    every_progressive = all(status == "ok" for status in prog["outcomes"]) and not prog["failed"]
    rows.append(
        (
            "4c ten 6000x4000 progressive 4:4:4 JPEGs in one batch, 1024 MB",
            f"+{prog['peak_growth_mb']:.0f} MB RSS, {len(prog['outcomes'])} results in {prog['seconds']:.0f} s",
            "<= 700 MB, ten results",
            verdict(prog["peak_growth_mb"] <= 700 and every_progressive),
        )
    )
    rows.append(
        (
            f"5 embedded stack, {thr['images']} images",
            f"{thr['images_per_second']:.1f} images/s ({thr['seconds']:.0f} s), lost {thr['lost']}",
            "none lost",
            verdict(thr["lost"] == 0),
        )
    )
    outcomes_written = thr["outcomes"].get("ok", 0) + thr["outcomes"].get("error", 0)
    rows.append(
        (
            "5c outcome rows, same run",
            f"{thr['rows_put']} rows for {outcomes_written} outcomes, {thr['stream_calls']} PutRecordBatch calls in "
            f"{thr['batches']} batches",
            "one row per outcome, <= one call a batch",
            verdict(thr["rows_put"] == outcomes_written and thr["stream_calls"] <= thr["batches"]),
        )
    )
    rows.append(
        (
            f"5b burst of {bst['images']} images, model at 5 calls/s",
            f"{bst['dead_letters']} dead letters, {bst['outcomes'].get('ok', 0)} results, "
            f"{100 * bst['throttled_ratio']:.1f}% calls throttled, {bst['seconds']:.0f} s",
            "0 dead letters, every image an outcome",
            verdict(bst["dead_letters"] == 0 and bst["outcomes"].get("ok", 0) == bst["images"]),
        )
    )
    largest = ", ".join(f"{k} {v:.1f}" for k, v in list(pkg["largest_zipped_mb"].items())[:3])
    rows.append(
        (
            "6 package (zipped)",
            f"{pkg['zipped_mb']:.1f} MB zipped, {pkg['unzipped_mb']:.0f} MB unzipped; largest: {largest} MB",
            "report",
            "-",
        )
    )
    rows.extend(cost_per_image.calls_rows(spent))
    rows.extend(cost_per_image.table(spent))
    rows.extend(latency.rows(critical_path))
    rows.extend(operator_scale.rows(scale))
    rows.extend(outcome_table.rows(outcome_rows, scale))
    results["cost"] = {**spent, "per_image": dataclasses.asdict(spent["per_image"])}
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    headers = ("row", "measured (median)", "target", "")
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    OUT.mkdir(exist_ok=True)
    results["machine"] = {
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d"),
    }
    # Every printed row, the cost rows included, as the table shows it
    results["rows"] = [dict(zip(("row", "measured", "target", "verdict"), row, strict=True)) for row in rows]
    (OUT / "bench.json").write_text(json.dumps(results, indent=2))
    print(f"\nwritten: {OUT / 'bench.json'}", file=sys.stderr)
    if args.record:
        record.record(results)
        print(f"recorded: {record.RECORD.relative_to(ROOT)}, {record.PAGE.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
