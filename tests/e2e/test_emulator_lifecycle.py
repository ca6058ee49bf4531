"""The embedded emulator and the model endpoint are owned by the process: stopped on errors too."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

import boto3
import pytest

from inferctl.emulator.models import stand_in
from inferctl.emulator.server import embedded_aws
from inferctl.emulator.services import LocalModels, local_services


def port_open(url: str) -> bool:
    parsed = urlparse(url)
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((parsed.hostname or "127.0.0.1", parsed.port or 80)) == 0


def test_emulator_serves_on_loopback_and_stops_when_the_block_fails():
    seen: list[str] = []

    def use_then_fail() -> None:
        with embedded_aws() as emulator:
            seen.append(emulator.endpoint_url)
            assert urlparse(emulator.endpoint_url).hostname == "127.0.0.1"
            assert os.environ["AWS_ENDPOINT_URL_S3"] == emulator.endpoint_url
            boto3.client("s3").create_bucket(Bucket="lifecycle")  # plain clients reach it through the env
            assert port_open(emulator.endpoint_url)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        use_then_fail()
    (url,) = seen
    assert not port_open(url)
    assert os.environ.get("AWS_ENDPOINT_URL_S3") != url


def test_local_services_stop_on_exit():
    with local_services(LocalModels({"demo": stand_in.detect}, lambda bucket, key, version: b"")) as url:
        assert port_open(url)
    assert not port_open(url)
