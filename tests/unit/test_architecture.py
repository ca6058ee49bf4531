"""The layout's rules, checked on the source: no import circles (type-only imports included), floors that only
look down, a command line that calls its logic and nothing past it, and nothing of the emulator in the asset."""

from __future__ import annotations

import ast
import importlib.util
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("lambdas", "stacks", "inferctl", "benchmarks", "tests")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            modules[module_name(path)] = path
    modules["app"] = ROOT / "app.py"
    return modules


def imported_from(node: ast.ImportFrom, package: str) -> str:
    """The absolute module a ``from ... import`` names (relative ones resolved against ``package``)."""
    base = node.module or ""
    if not node.level:
        return base
    anchor = package.split(".")
    anchor = anchor[: len(anchor) - (node.level - 1)]
    return ".".join([*anchor, base] if base else anchor)


def imported(name: str, path: Path) -> set[str]:
    """Every name this module imports, anywhere in it (functions and TYPE_CHECKING blocks included):
    ``from P import m`` yields ``P`` and ``P.m``; ``project_imports`` keeps ``P.m`` alone when it is a module (a
    package's ``__init__`` that only hands names on is not what the importer uses)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = imported_from(node, package)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def project_imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules among what this module imports."""
    names = imported(name, path)
    found: set[str] = set()
    for candidate in names:
        if candidate in known and any(other.startswith(candidate + ".") and other in known for other in names):
            continue  # ``from package import module``: the module is what is used
        while candidate and candidate not in known:
            candidate = candidate.rpartition(".")[0]
        if candidate and candidate != name:
            found.add(candidate)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = project_modules()
    known = set(modules)
    return {name: project_imports(name, path, known) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_there_are_no_import_circles_not_even_type_only_ones(graph):
    assert cycles(graph) == []


def test_the_circle_finder_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_a_type_only_import_is_an_arrow(tmp_path):
    module = tmp_path / "m.py"
    module.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from lambdas.contract import settings\n"
    )
    assert "lambdas.contract.settings" in imported("m", module)


INFERENCE = "lambdas.inference"
CONTRACT = "lambdas.contract"
# (floor, what it must never import). A floor is a module or a package; prefixes match whole name parts.
FLOORS = [
    # the functions' asset ships alone
    ("lambdas", ("stacks", "inferctl", "tests", "benchmarks", "app")),
    # the shared contract (settings, rules, errors, thresholds, the result schema, backend control) is the ground
    # floor: both functions, the CDK app and the tools stand on it, and it stands on neither function
    (CONTRACT, (INFERENCE, "lambdas.controller")),
    # the inference function, from the ground up
    (
        f"{INFERENCE}.images",
        (
            f"{INFERENCE}.{p}"
            for p in ("backends", "challenger", "pipeline", "handler", "storage", "batch", "environment", "telemetry")
        ),
    ),
    (
        f"{INFERENCE}.backends",
        (f"{INFERENCE}.{p}" for p in ("challenger", "pipeline", "handler", "storage", "batch", "environment")),
    ),
    (f"{INFERENCE}.pipeline", tuple(f"{INFERENCE}.{p}" for p in ("handler", "environment", "telemetry"))),
    # the handler stands on the execution environment, which stands on the telemetry
    (f"{INFERENCE}.environment", (f"{INFERENCE}.handler",)),
    (f"{INFERENCE}.telemetry", (f"{INFERENCE}.handler", f"{INFERENCE}.environment")),
    # the model controller reads the inference function's settings from the contract, never the function
    ("lambdas.controller", (INFERENCE,)),
    (
        "lambdas.controller.decide",
        ("lambdas.controller.handler", "lambdas.controller.settings", f"{CONTRACT}.settings"),
    ),
    # the CDK app
    ("stacks", ("inferctl", "tests", "benchmarks", INFERENCE)),
    # the operator tool: commands on top, then the embedded stack, then stack operations, then pure evaluation
    ("inferctl", ("tests", "benchmarks", "app")),
    ("inferctl.cli", ("lambdas", "stacks")),  # a command calls its logic, never past it
    # scenarios (the demo, the fault run, the burst) stand on both the stack operations and the emulator
    ("inferctl.scenarios", ("inferctl.cli",)),
    # the embedded AWS (moto's server, the trigger, the local model services) knows nothing of what runs on it
    ("inferctl.emulator", ("inferctl.cli", "inferctl.scenarios", "inferctl.stack")),
    # stack operations work on any stack by its outputs: the emulator is never needed to reach one
    ("inferctl.stack", ("inferctl.cli", "inferctl.scenarios", "inferctl.emulator", INFERENCE)),
    ("inferctl.evaluation", ("inferctl.cli", "inferctl.scenarios", "inferctl.emulator", "inferctl.stack", INFERENCE)),
    ("inferctl.console", ("inferctl.cli", "inferctl.scenarios", "inferctl.emulator", "inferctl.stack", INFERENCE)),
    ("inferctl.pricing", ("inferctl.cli", "inferctl.scenarios", "inferctl.emulator", "inferctl.stack", INFERENCE)),
    ("inferctl.samples", ("inferctl.cli", "inferctl.scenarios", "inferctl.emulator", "inferctl.stack", INFERENCE)),
    # unit tests: the code under test, not the emulator or the benchmarks
    ("tests.unit", ("inferctl.scenarios", "inferctl.emulator", "benchmarks")),
]


def _within(name: str, floor: str) -> bool:
    return name == floor or name.startswith(floor + ".")


@pytest.mark.parametrize(("floor", "forbidden"), [(f, tuple(x)) for f, x in FLOORS], ids=[f for f, _ in FLOORS])
def test_each_floor_imports_only_what_is_below_it(graph, floor, forbidden):
    offending = sorted(
        (module, target)
        for module, targets in graph.items()
        if _within(module, floor)
        for target in targets
        if any(_within(target, f) for f in forbidden)
    )
    assert offending == []


EMULATOR_MODULES = ("http.server", "socketserver", "wsgiref", "moto", "werkzeug", "inferctl", "stacks", "tests")


def test_the_asset_holds_no_emulator_code():
    """Everything under lambdas/ is the asset (stacks/bundling.py copies the package whole)."""
    found = sorted(
        (str(path.relative_to(ROOT)), name)
        for path in (ROOT / "lambdas").rglob("*.py")
        for name in imported(module_name(path), path)
        if any(name == m or name.startswith(m + ".") for m in EMULATOR_MODULES)
    )
    assert found == []


def test_each_command_is_a_module_named_as_the_command():
    import argparse

    from inferctl.cli import COMMANDS, build_parser

    (commands,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    names = set(commands.choices)
    assert {command.__name__.rsplit(".", 1)[1].replace("_", "-") for command in COMMANDS} == names


def renamed_module_imports(name: str, path: Path, known: set[str]) -> list[str]:
    """``from P import m as x`` and ``import P.m as x`` where ``m`` is a project module: the reader meets ``x`` and
    has to look up which module it is."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [f"import {a.name} as {a.asname}" for a in node.names if a.asname and a.name in known]
        elif isinstance(node, ast.ImportFrom):
            base = imported_from(node, package)
            found += [
                f"from {base} import {a.name} as {a.asname}"
                for a in node.names
                if a.asname and a.asname != a.name and f"{base}.{a.name}" in known
            ]
    return found


def test_no_project_module_is_renamed_on_import():
    modules = project_modules()
    known = set(modules)
    renamed = {name: found for name, path in modules.items() if (found := renamed_module_imports(name, path, known))}
    assert renamed == {}


def test_the_rename_finder_finds_a_renamed_module(tmp_path):
    module = tmp_path / "m.py"
    module.write_text(
        "from inferctl.stack import uploads as images\nfrom inferctl.stack.uploads import wait_for as w\n"
    )
    known = {"inferctl.stack.uploads"}
    assert renamed_module_imports("m", module, known) == ["from inferctl.stack import uploads as images"]


def test_every_cdk_module_the_project_imports_is_type_checked():
    """mypy analyses only the aws-cdk-lib modules pyproject.toml lists (the other 300 are skipped: they were most of
    its time): a module the project imports must be listed, or calls into it would go unchecked."""
    overrides = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mypy"]["overrides"]
    checked = {name for section in overrides if section.get("follow_imports") == "normal" for name in section["module"]}
    package = Path(str(importlib.util.find_spec("aws_cdk").origin)).parent  # type: ignore[union-attr]
    used = {"aws_cdk"}
    for name, path in project_modules().items():
        for found in imported(name, path):
            parts = found.split(".")[1:]
            if found.startswith("aws_cdk.") and (package.joinpath(*parts) / "__init__.py").exists():
                used.add(found)
    assert len(used) > 10
    assert used - checked == set()
