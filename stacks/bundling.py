"""Docker-free bundling of the Lambda asset: copy the function's package and install its dependencies
from platform wheels built for the function's architecture and Python version.

pip's ``--platform/--python-version/--implementation/--only-binary`` select prebuilt wheels; nothing is
compiled or run for the target. Packages the Lambda runtime already provides (boto3, botocore and their
dependencies) are pruned: they are large, and the runtime's copies are the ones AWS keeps patched.

Bytecode: Lambda's ``/var/task`` is read-only, so a module shipped as source is compiled again at every cold start
(the function's own modules and Powertools: about half of what importing the handler costs, ``make bench`` row
1s). Where the bundling machine has the runtime's interpreter (``python3.14`` on the PATH), the asset also holds
their bytecode, compiled by it as ``unchecked-hash`` .pyc files (valid whatever the files' times after unzipping;
bytecode only that interpreter's version reads). Without it the asset holds sources only, and synthesis says so
once.
"""

from __future__ import annotations

import functools
import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import ILocalBundling

from stacks.bytecode import compile_bytecode, runtime_interpreter

LAMBDA_PYTHON_VERSION = "3.14"  # the function's runtime (stacks/function.py checks they agree)
# Pillow for linux/arm64 ships as manylinux_2_28 only; older packages as manylinux2014.
AARCH64_PLATFORMS = ("manylinux_2_28_aarch64", "manylinux2014_aarch64")
# `make` downloads the wheels here during set-up, so synthesis (and the tests) need no network afterwards.
WHEELHOUSE = Path(__file__).resolve().parent.parent / ".venv" / "lambda-wheels"
PROVIDED_BY_RUNTIME = ("boto3", "botocore", "s3transfer", "urllib3", "dateutil", "python_dateutil", "six")


@jsii.implements(ILocalBundling)
class PipPlatformBundling:
    def __init__(
        self,
        package_dir: Path,
        requirements: Path,
        *,
        python_version: str = LAMBDA_PYTHON_VERSION,
        platforms: tuple[str, ...] = AARCH64_PLATFORMS,
        wheelhouse: Path = WHEELHOUSE,
        compiler: str | None = None,
    ) -> None:
        self.wheelhouse = wheelhouse
        self.package_dir = package_dir
        self.requirements = requirements
        self.python_version = python_version
        self.platforms = platforms
        # the interpreter that writes the asset's bytecode: the runtime's own version, or none
        self.compiler = compiler if compiler is not None else runtime_interpreter(python_version)

    def _wheel_selection(self) -> list[str]:
        flags: list[str] = []
        for platform in self.platforms:
            flags += ["--platform", platform]
        return [*flags, "--implementation", "cp", "--python-version", self.python_version, "--only-binary=:all:"]

    def download(self) -> None:
        """Fetch the wheels into the wheelhouse (set-up time, with network)."""
        self.wheelhouse.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check"]
        command += [*self._wheel_selection(), "--dest", str(self.wheelhouse), "--requirement", str(self.requirements)]
        subprocess.run(command, check=True)  # noqa: S603 - fixed argv, no shell

    def _installed(self) -> Path:
        """The dependencies installed for the target platform, once per set of requirements and wheels: every
        later synthesis (the tests run dozens) copies them instead of running pip again."""
        key = hashlib.sha256()
        key.update(self.requirements.read_bytes())
        key.update(f"{self.python_version} {self.platforms} {bool(self.compiler)}".encode())
        if self.wheelhouse.is_dir():
            key.update("\n".join(sorted(p.name for p in self.wheelhouse.glob("*.whl"))).encode())
        cached = self.wheelhouse.parent / "lambda-bundle" / key.hexdigest()[:16]
        if cached.is_dir():
            return cached
        staging = Path(tempfile.mkdtemp(prefix="bundle-", dir=cached.parent.parent))
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile"]
        if self.wheelhouse.is_dir():
            command += ["--no-index", "--find-links", str(self.wheelhouse)]
        command += [*self._wheel_selection(), "--target", str(staging), "--requirement", str(self.requirements)]
        subprocess.run(command, check=True)  # noqa: S603 - fixed argv, no shell
        for name in PROVIDED_BY_RUNTIME:
            for path in staging.glob(f"{name}"):
                shutil.rmtree(path, ignore_errors=True)
            for path in staging.glob(f"{name}-*.dist-info"):
                shutil.rmtree(path, ignore_errors=True)
        if self.compiler:
            compile_bytecode(self.compiler, staging)
        cached.parent.mkdir(parents=True, exist_ok=True)
        try:
            staging.rename(cached)
        except OSError:  # another synthesis finished the same install first
            shutil.rmtree(staging, ignore_errors=True)
        return cached

    def try_bundle(self, output_dir: str, *_args: Any, **_kwargs: Any) -> bool:
        out = Path(output_dir)
        shutil.copytree(self._installed(), out, dirs_exist_ok=True)
        shutil.copytree(
            self.package_dir,
            out / self.package_dir.name,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "requirements.txt"),
        )
        if self.compiler:
            compile_bytecode(self.compiler, out / self.package_dir.name)
        else:
            _say_sources_only(self.python_version)
        return True


@functools.cache
def _say_sources_only(python_version: str) -> None:
    print(
        f"bundling: no python{python_version} here, so the Lambda asset holds sources only and every cold start "
        "compiles them (docs/performance.md, row 1s); install it where you deploy from to ship bytecode",
        file=sys.stderr,
    )


# The asset holds the ``lambdas`` package (both functions: ``lambdas.inference`` and ``lambdas.controller``) and the
# dependencies, so that the code imports itself by the same names in Lambda as here.
PACKAGE_DIR = Path(__file__).resolve().parent.parent / "lambdas"


def lambda_bundling() -> PipPlatformBundling:
    """The bundling of the functions' asset."""
    return PipPlatformBundling(PACKAGE_DIR, PACKAGE_DIR / "requirements.txt")


if __name__ == "__main__":
    lambda_bundling().download()
