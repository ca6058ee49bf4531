"""Synthesize the app the way ``cdk synth`` does (cdk.json context, cdk-nag on), for template tests."""

from __future__ import annotations

import atexit
import json
import shutil
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from tempfile import mkdtemp
from typing import Any

import aws_cdk as cdk
from aws_cdk.assertions import Template

from app import build_app
from stacks.config import cdk_json_context
from stacks.inference_stack import ImageInferenceStack


@dataclass(frozen=True)
class Synthesized:
    template: Template
    stack: ImageInferenceStack
    outdir: Path

    @property
    def json(self) -> dict[str, Any]:
        return dict(self.template.to_json())

    def resources(self, kind: str) -> dict[str, dict[str, Any]]:
        return {name: r for name, r in self.json["Resources"].items() if r["Type"] == kind}

    def one(self, kind: str) -> tuple[str, dict[str, Any]]:
        found = self.resources(kind)
        assert len(found) == 1, f"expected one {kind}, found {sorted(found)}"
        return next(iter(found.items()))

    def logical_id(self, construct: Any) -> str:
        return str(self.stack.resolve(construct.node.default_child.logical_id))

    @property
    def nag_report(self) -> dict[str, Any]:
        report: dict[str, Any] = json.loads((self.outdir / "validation-report.json").read_text())
        return report

    @property
    def template_file(self) -> Path:
        return self.outdir / f"{self.stack.stack_name}.template.json"


def synth(bundle: bool = False, **context: Any) -> Synthesized:
    return _synth(bundle, json.dumps(context, sort_keys=True))


@cache
def _synth(bundle: bool, context_json: str) -> Synthesized:
    context = {**cdk_json_context(), **json.loads(context_json)}
    if not bundle:
        context["aws:cdk:bundling-stacks"] = []
    outdir = assembly_folder()
    app, stack = build_app(cdk.App(outdir=str(outdir), context=context), bundle=bundle)
    app.synth()
    return Synthesized(template=Template.from_stack(stack), stack=stack, outdir=outdir)


def assembly_folder() -> Path:
    """A new folder for one cloud assembly, in this process's scratch folder."""
    return Path(mkdtemp(prefix="cdk-test-", dir=_scratch()))


@cache
def _scratch() -> Path:
    """One folder per test process for its cloud assemblies (about 0.5 MB each, dozens per run), removed when
    the process ends: the templates stay readable for the whole session and nothing piles up in /tmp."""
    folder = Path(mkdtemp(prefix="cdk-test-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder
