"""Cold start of a minimal handler like the seed's sample: boto3, detect_custom_labels, put_object."""

import time

STARTED = time.perf_counter()
STARTED_CPU = time.process_time()

import gc  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

# Row 1c: the same baseline with the function's collector pause (lambdas/inference/collector.py): what is left of
# the handler's start against it is its own work, not the collector's.
PAUSED = os.environ.get("COLD_BASELINE_COLLECTOR_PAUSED") == "1"
if PAUSED:
    gc.disable()

import boto3  # noqa: E402

rekognition = boto3.client("rekognition")
s3 = boto3.client("s3")
if PAUSED:
    gc.freeze()
    gc.enable()


def handler(event: dict, context: object) -> None:  # type: ignore[type-arg]
    for record in event["Records"]:
        body = json.loads(record["body"])
        for item in body["Records"]:
            bucket, key = item["s3"]["bucket"]["name"], item["s3"]["object"]["key"]
            labels = rekognition.detect_custom_labels(
                ProjectVersionArn=os.environ["REKOGNITION_MODEL_ARN"],
                Image={"S3Object": {"Bucket": bucket, "Name": key}},
            )
            s3.put_object(Bucket=bucket, Key=key + ".json", Body=json.dumps(labels["CustomLabels"]))


handler(json.loads(sys.argv[1]), None)
print(json.dumps({"seconds": time.perf_counter() - STARTED, "cpu_seconds": time.process_time() - STARTED_CPU}))
