"""The Lambda asset is built without Docker, for arm64, from the wheels fetched at set-up time."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from stacks.bundling import WHEELHOUSE
from tests.infrastructure.synth import synth

ELF_MACHINE_AARCH64 = 0xB7  # e_machine for ARM 64-bit


def elf_machine(path: Path) -> int:
    header = path.read_bytes()[:20]
    assert header[:4] == b"\x7fELF", f"{path} is not an ELF binary"
    return int.from_bytes(header[18:20], "little")


@pytest.fixture(scope="module")
def asset_dir() -> Path:
    if not WHEELHOUSE.is_dir():
        pytest.fail(f"{WHEELHOUSE} is missing: run `make install` (it downloads the Lambda's wheels)")
    s = synth(bundle=True)
    code = s.json["Resources"][s.logical_id(s.stack.inference.function)]["Properties"]["Code"]
    assert "S3Key" in code  # an asset, not inline code
    assets = [
        p for p in s.outdir.glob("asset.*") if p.is_dir() and (p / "lambdas" / "inference" / "handler.py").exists()
    ]
    assert len(assets) == 1, assets
    return assets[0]


def test_asset_holds_the_handler_package_and_its_dependencies(asset_dir):
    assert (asset_dir / "lambdas" / "inference" / "handler.py").is_file()
    assert (asset_dir / "lambdas" / "controller" / "handler.py").is_file()
    assert (asset_dir / "lambdas" / "inference" / "backends" / "rekognition.py").is_file()
    assert (asset_dir / "aws_lambda_powertools").is_dir()
    assert (asset_dir / "aws_xray_sdk").is_dir()
    assert not list(asset_dir.rglob("__pycache__"))
    assert not (asset_dir / "lambdas" / "requirements.txt").exists()
    # Provided by the Lambda runtime: pruned to keep the package small.
    for provided in ("boto3", "botocore", "s3transfer"):
        assert not (asset_dir / provided).exists()


def test_pillow_binaries_are_built_for_aarch64_and_the_runtime_python(asset_dir):
    binaries = sorted((asset_dir / "PIL").glob("_imaging*.so"))
    assert binaries, "no compiled Pillow extension in the asset"
    for binary in binaries:
        assert "aarch64" in binary.name
        assert "cpython-314" in binary.name
        assert elf_machine(binary) == ELF_MACHINE_AARCH64
    bundled_libs = list((asset_dir / "pillow.libs").glob("*.so*"))
    assert bundled_libs
    assert all(elf_machine(lib) == ELF_MACHINE_AARCH64 for lib in bundled_libs)


def test_asset_zips_below_lambda_limits(asset_dir, tmp_path):
    archive = tmp_path / "asset.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for path in asset_dir.rglob("*"):
            zipped.write(path, path.relative_to(asset_dir))
    unzipped = sum(p.stat().st_size for p in asset_dir.rglob("*") if p.is_file())
    assert archive.stat().st_size < 50 * 1024 * 1024  # direct-upload limit
    assert unzipped < 250 * 1024 * 1024  # unzipped code + layers limit
