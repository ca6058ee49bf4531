"""The template tests' cloud assemblies do not outlive the test process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.paths import ROOT


def test_a_synthesized_assembly_is_removed_when_the_process_ends() -> None:
    child = subprocess.run(
        # The folder ``synth`` writes each assembly to, with a file in it: a whole synth here cost 15 s of CPU
        [
            sys.executable,
            "-c",
            "from tests.infrastructure.synth import assembly_folder; d = assembly_folder(); "
            "(d / 'manifest.json').write_text('{}'); print(d)",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    outdir = Path(child.stdout.strip().splitlines()[-1])
    assert outdir.parent.name.startswith("cdk-test-"), f"{outdir} is not in the process's own folder"
    assert not outdir.parent.exists(), f"{outdir.parent} is left behind"
