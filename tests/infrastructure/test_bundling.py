"""The Lambda asset is built without Docker, for arm64, from the wheels fetched at set-up time."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from stacks.bundling import LAMBDA_PYTHON_VERSION, WHEELHOUSE, PipPlatformBundling
from stacks.bytecode import runtime_interpreter
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
    # bytecode only from the runtime's own interpreter, and none of this machine's
    bytecode = {path.name.split(".")[1] for path in asset_dir.rglob("*.pyc")}
    tag = f"cpython-{LAMBDA_PYTHON_VERSION.replace('.', '')}"
    assert bytecode == ({tag} if runtime_interpreter(LAMBDA_PYTHON_VERSION) else set())
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


def test_with_the_runtime_s_interpreter_the_asset_holds_bytecode_the_runtime_loads_as_it_is(tmp_path):
    """This interpreter stands in for the runtime's: the package is bundled with its bytecode, and an import from the
    bundle, writing nothing (as from Lambda's read-only /var/task), runs the bytecode without checking the source."""
    package = tmp_path / "src" / "pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "mod.py").write_text("ANSWER = 'compiled at bundling'\n")
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "stale.cpython-311.pyc").write_bytes(b"not from the bundling")
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    bundling = PipPlatformBundling(
        package, tmp_path / "requirements.txt", python_version=version, compiler=sys.executable
    )
    bundling._installed = lambda: tmp_path / "dependencies"  # type: ignore[method-assign]  # no pip here
    (tmp_path / "dependencies").mkdir()
    out = tmp_path / "asset"
    assert bundling.try_bundle(str(out))
    tag = sys.implementation.cache_tag
    assert sorted(p.name for p in (out / "pkg" / "__pycache__").iterdir()) == [f"__init__.{tag}.pyc", f"mod.{tag}.pyc"]
    (out / "pkg" / "mod.py").write_text("ANSWER = 'compiled at the cold start'\n")  # the source is not consulted
    env = {**os.environ, "PYTHONPATH": str(out), "PYTHONDONTWRITEBYTECODE": "1"}
    answer = subprocess.run(
        [sys.executable, "-c", "import pkg.mod; print(pkg.mod.ANSWER)"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert answer.stdout.strip() == "compiled at bundling", answer.stderr


def test_without_the_runtime_s_interpreter_the_asset_holds_sources_only(tmp_path):
    assert runtime_interpreter("2.1") is None  # no such interpreter: no bytecode, and no other version's
    package = tmp_path / "src" / "pkg"
    package.mkdir(parents=True)
    (package / "mod.py").write_text("ANSWER = 1\n")
    bundling = PipPlatformBundling(package, tmp_path / "requirements.txt", python_version="2.1")
    bundling._installed = lambda: tmp_path / "dependencies"  # type: ignore[method-assign]
    (tmp_path / "dependencies").mkdir()
    assert bundling.try_bundle(str(tmp_path / "asset"))
    assert sorted(p.name for p in (tmp_path / "asset").rglob("*")) == ["mod.py", "pkg"]
