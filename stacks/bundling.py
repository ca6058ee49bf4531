"""Docker-free bundling of the Lambda asset: copy the function's package and install its dependencies
from platform wheels built for the function's architecture and Python version.

pip's ``--platform/--python-version/--implementation/--only-binary`` select prebuilt wheels; nothing is
compiled or run for the target. Packages the Lambda runtime already provides (boto3, botocore and their
dependencies) are pruned: they are large, and the runtime's copies are the ones AWS keeps patched.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import ILocalBundling

# Pillow for linux/arm64 ships as manylinux_2_28 only; older packages as manylinux2014.
AARCH64_PLATFORMS = ("manylinux_2_28_aarch64", "manylinux2014_aarch64")
PROVIDED_BY_RUNTIME = ("boto3", "botocore", "s3transfer", "urllib3", "dateutil", "python_dateutil", "six")


@jsii.implements(ILocalBundling)
class PipPlatformBundling:
    def __init__(
        self,
        package_dir: Path,
        requirements: Path,
        *,
        python_version: str = "3.13",
        platforms: tuple[str, ...] = AARCH64_PLATFORMS,
    ) -> None:
        self.package_dir = package_dir
        self.requirements = requirements
        self.python_version = python_version
        self.platforms = platforms

    def try_bundle(self, output_dir: str, *_args: Any, **_kwargs: Any) -> bool:
        out = Path(output_dir)
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile"]
        for platform in self.platforms:
            command += ["--platform", platform]
        command += [
            "--implementation",
            "cp",
            "--python-version",
            self.python_version,
            "--only-binary=:all:",
            "--target",
            str(out),
            "--requirement",
            str(self.requirements),
        ]
        subprocess.run(command, check=True)  # noqa: S603 - fixed argv, no shell
        for name in PROVIDED_BY_RUNTIME:
            for path in out.glob(f"{name}"):
                shutil.rmtree(path, ignore_errors=True)
            for path in out.glob(f"{name}-*.dist-info"):
                shutil.rmtree(path, ignore_errors=True)
        shutil.copytree(
            self.package_dir,
            out / self.package_dir.name,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "requirements.txt"),
        )
        return True
