"""The embedded AWS emulator (moto's server) on 127.0.0.1, owned by this process.

``embedded_aws()`` starts it on a free port and points boto3 at it through the standard
``AWS_ENDPOINT_URL_<SERVICE>`` variables and fake credentials, so code that creates plain
``boto3.client("s3")`` (the Lambda handler) talks to it unchanged. Everything is restored and the server
stopped when the block exits, on an error or Ctrl-C included.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import boto3

from inferctl.emulator.patching import once

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "embedded",
    "AWS_SECRET_ACCESS_KEY": "embedded",
    "AWS_SESSION_TOKEN": "embedded",
}
EMULATED_SERVICES = (
    "S3",
    "SQS",
    "KMS",
    "CLOUDWATCH_LOGS",
    "CLOUDFORMATION",
    "SSM",
    "CLOUDWATCH",
    "EVENTBRIDGE",
    "FIREHOSE",
)


@dataclass(frozen=True)
class Emulator:
    endpoint_url: str
    region: str

    def session(self) -> boto3.Session:
        return boto3.Session(
            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=FAKE_CREDENTIALS["AWS_SESSION_TOKEN"],
            region_name=self.region,
        )

    def environment(self) -> dict[str, str]:
        """Variables that point boto3 (in this process or a child) at the emulator."""
        env = {f"AWS_ENDPOINT_URL_{service}": self.endpoint_url for service in EMULATED_SERVICES}
        env.update(FAKE_CREDENTIALS)
        env.update({"AWS_REGION": self.region, "AWS_DEFAULT_REGION": self.region})
        return env


@contextmanager
def patched_environ(values: Mapping[str, str], remove: tuple[str, ...] = ()) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in (*values, *remove)}
    for name in remove:
        os.environ.pop(name, None)
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@once
def _services_listed_once() -> None:
    """moto's server tells a request's service from its host by listing its own package directory, for every request
    (``moto.backends.list_of_moto_modules``: a listdir and about 170 stats, 4-5% of a request's CPU here). The list
    does not change while the process runs: it is read once."""
    from moto import backends

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules


@contextmanager
def embedded_aws(region: str = "us-east-1") -> Iterator[Emulator]:
    """Start moto's server on 127.0.0.1 (free port); stop it when the block exits, whatever happens."""
    from moto.server import ThreadedMotoServer

    _services_listed_once()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        emulator = Emulator(endpoint_url=f"http://{host}:{port}", region=region)
        # A developer's real profile or endpoint settings must never leak into the embedded run.
        with patched_environ(emulator.environment(), remove=("AWS_PROFILE", "AWS_ENDPOINT_URL")):
            yield emulator
    finally:
        server.stop()
