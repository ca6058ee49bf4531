"""The asset's bytecode: compiled by the Lambda runtime's own interpreter where the bundling machine has it
(``bundling.py``), and by the benchmark's interpreter standing in for it (``benchmarks``, row 1). No CDK here: the
benchmark imports it without starting the CDK's Node process."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def runtime_interpreter(python_version: str) -> str | None:
    """``python<version>`` on the PATH, when it is that version: the only interpreter whose bytecode the runtime
    reads."""
    found = shutil.which(f"python{python_version}")
    if found is None:
        return None
    probe = [found, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"]
    answer = subprocess.run(probe, capture_output=True, text=True, check=False)  # noqa: S603 - fixed argv
    return found if answer.returncode == 0 and answer.stdout.strip() == python_version else None


def compile_bytecode(interpreter: str, directory: Path) -> None:
    """Every module under ``directory`` compiled by ``interpreter``: .pyc files checked against nothing (a zip's file
    times are not the sources' own), so the runtime loads them as they are."""
    command = [interpreter, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash"]
    subprocess.run([*command, str(directory)], check=True, capture_output=True)  # noqa: S603 - fixed argv
