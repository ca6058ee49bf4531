"""The documented deploy commands are the tested path: every ``npx cdk`` line of the README's deploy section
and of the pages under docs/ that needs no AWS credentials runs as written, through the CDK CLI pinned in
package.json (``make install`` puts it in node_modules). Lines that need an account (``bootstrap``,
``deploy``, ``destroy``) run as ``synth`` with the same ``-c`` options, so every documented set of context
synthesizes. No credentials reach the CLI."""

from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NEEDS_AN_ACCOUNT = {"bootstrap", "deploy", "destroy", "diff"}


PAGES = sorted(p for p in (ROOT / "docs").glob("*.md") if p.name != "decisions.md")  # decisions: a record


def deploy_commands(text: str) -> list[list[str]]:
    """Each ``npx cdk`` line of the text's bash blocks, with any leading ``NAME=value`` assignments."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            assignments = list(itertools.takewhile(lambda word: re.fullmatch(r"[A-Z_]+=.*", word), words))
            if words[len(assignments) : len(assignments) + 2] == ["npx", "cdk"]:
                commands.append(words)
    return commands


README_SECTION = (ROOT / "README.md").read_text(encoding="utf-8").split("\n## Deploying\n", 1)[1].split("\n## ")[0]
COMMANDS = deploy_commands(README_SECTION)
DOCUMENTED = COMMANDS + [words for page in PAGES for words in deploy_commands(page.read_text(encoding="utf-8"))]
PINNED = json.loads((ROOT / "package.json").read_text())["devDependencies"]["aws-cdk"]


def split(words: list[str] | tuple[str, ...]) -> tuple[dict[str, str], list[str]]:
    """(the line's environment assignments, the command from ``npx`` on)."""
    start = words.index("npx")
    return dict(word.split("=", 1) for word in words[:start]), list(words[start:])


def credential_free(words: list[str]) -> tuple[str, ...]:
    """The line itself, or for a verb that needs an account, ``synth`` with the same options."""
    assignments, command = split(words)
    prefix = tuple(f"{name}={value}" for name, value in assignments.items())
    if command[2] in NEEDS_AN_ACCOUNT:
        return (*prefix, "npx", "cdk", "synth", *(word for word in command[3:] if not word.startswith("--")))
    return tuple(words)


# bootstrap, deploy and destroy without options all come down to the plain synth: each runs once.
RUNS = list(dict.fromkeys(credential_free(words) for words in DOCUMENTED))


def jsii_package_cache() -> Path:
    """Where jsii keeps the packages it has unpacked (aws-cdk-lib, cdk-nag) for this user: its default root."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "aws" / "jsii" / "package-cache"


def cli_environment(home: Path) -> dict[str, str]:
    keep = ("PATH", "LANG")  # not jsii's silencer: a user's shell lacks it, and app.py sets it
    environment = {name: os.environ[name] for name in keep if name in os.environ}
    # Nothing to sign with, and nowhere to find it: a fresh HOME, no profile, no AWS_* credentials. jsii's package
    # cache is the user's own, as on any machine that ran the CDK before: with the fresh HOME each line unpacked
    # aws-cdk-lib again, half of a line's CPU (26 s against 13 s per synth here). It holds packages, no secret.
    return {
        **environment,
        "HOME": str(home),
        "JSII_RUNTIME_PACKAGE_CACHE_ROOT": str(jsii_package_cache()),
        "CDK_DISABLE_VERSION_CHECK": "1",
        "NO_COLOR": "1",
        # No V8 background compiler threads: the lines run at once, each a CLI and a jsii Node process, and on 2
        # cores those threads only contend (the module: 97-100 s of CPU and 57-61 s with them, 70-76 s and 44-46 s
        # without). What the command does is unchanged.
        "NODE_OPTIONS": "--v8-pool-size=0",
    }


def test_the_section_documents_the_whole_path() -> None:
    verbs = [split(words)[1][2] for words in COMMANDS]
    for verb in ("--version", "ls", "synth", "bootstrap", "deploy", "destroy"):
        assert verb in verbs, f"the README's deploy block lacks `npx cdk {verb}`"
    assert sum(verb == "deploy" for verb in verbs) >= 3  # default, with a model, the other backend


@dataclass
class Run:
    command: list[str]
    home: Path
    process: subprocess.Popen[bytes]

    def finish(self) -> subprocess.CompletedProcess[str]:
        code = self.process.wait(timeout=600)
        out, err = (self.home / "stdout").read_text(), (self.home / "stderr").read_text()
        return subprocess.CompletedProcess(self.command, code, out, err)


@pytest.fixture(scope="module")
def started(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[tuple[str, ...], Run]]:
    """Every line started at once: each is a CLI, a Python app and a jsii Node process, mostly waiting on one another,
    so they share the machine instead of queueing on one test worker (225 s one after the other on 2 cores)."""
    assert (ROOT / "node_modules" / ".bin" / "cdk").exists(), "the pinned CDK CLI is missing: run `make install`"
    runs = {}
    for line in RUNS:
        home = tmp_path_factory.mktemp("cdk-line")
        assignments, words = split(line)
        command = [*words, "--quiet", "--output", str(home / "cdk.out")] if words[2] == "synth" else words
        environment = {**cli_environment(home), **assignments}
        assert "CDK_VALIDATION" not in environment  # the CDK's own template validation runs, as for a user
        with (home / "stdout").open("wb") as out, (home / "stderr").open("wb") as err:
            process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=out, stderr=err)
        runs[line] = Run(command, home, process)
    yield runs
    for run in runs.values():
        if run.process.poll() is None:
            run.process.kill()
            run.process.wait()


@pytest.mark.parametrize("line", RUNS, ids=[" ".join(split(line)[1][2:])[:70] for line in RUNS])
def test_each_deploy_line_runs_without_credentials(line: tuple[str, ...], started: dict[tuple[str, ...], Run]) -> None:
    run = started[line]
    words = split(line)[1]
    command, tmp_path = run.command, run.home
    result = run.finish()
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{output[-3000:]}"
    assert "feature flags" not in output.lower(), output[-2000:]
    assert "end-of-life" not in output.lower(), output[-2000:]  # no Node banner (app.py silences jsii's)
    if words[2] == "--version":
        assert result.stdout.startswith(PINNED), result.stdout
    if words[2] == "ls":
        assert "ImageInference" in result.stdout.split()
    if command[2] == "synth":
        name = next((w.split("=", 1)[1] for w in words if w.startswith("stackName=")), "ImageInference")
        template = json.loads((tmp_path / "cdk.out" / f"{name}.template.json").read_text())
        environments = [r["Properties"].get("Environment", {}) for r in template["Resources"].values()]
        (variables,) = [e["Variables"] for e in environments if "BACKEND" in e.get("Variables", {})]
        for option in (w for w in words if "=" in w and not w.startswith("-")):
            key, value = option.split("=", 1)
            if key == "backend":
                assert variables["BACKEND"] == value
            if key == "rekognitionModelArn":
                assert variables["REKOGNITION_MODEL_ARN"] == value
