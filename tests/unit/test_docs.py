"""The documents agree with the repository: the architecture page's tree names what exists and every package."""

from __future__ import annotations

import re

from tests.support.paths import ROOT

ARCHITECTURE = ROOT / "docs" / "architecture.md"


def layout_block() -> list[str]:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    block = text.split("## Layout", 1)[1].split("```", 2)[1]
    return block.splitlines()


def documented_paths() -> set[str]:
    """Every path the tree names: folders by their indentation, files beside them."""
    paths: set[str] = set()
    parents: list[tuple[int, str]] = []
    for line in layout_block():
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        names = re.findall(r"(?<![\w./`])([\w.]+/?)(?=\s|$)", re.split(r"\s{3,}", line.strip())[0] + " ")
        while parents and parents[-1][0] >= indent:
            parents.pop()
        base = parents[-1][1] if parents else ""
        for name in names:
            if not (name.endswith("/") or "." in name):
                continue
            path = base + name
            paths.add(path.rstrip("/"))
            if name.endswith("/"):
                parents.append((indent, path))
    return paths


def test_every_path_the_architecture_page_names_exists():
    missing = sorted(path for path in documented_paths() if not (ROOT / path).exists())
    assert missing == []


def test_every_package_is_on_the_architecture_page():
    documented = documented_paths()
    packages = sorted(
        str(init.parent.relative_to(ROOT))
        for folder in ("lambdas", "inferctl")
        for init in (ROOT / folder).rglob("__init__.py")
    )
    undocumented = [package for package in packages if package not in documented]
    assert undocumented == []


def test_the_readme_links_the_architecture_page():
    assert "docs/architecture.md" in (ROOT / "README.md").read_text(encoding="utf-8")


PAGES = [ROOT / "README.md", *sorted(p for p in (ROOT / "docs").glob("*.md") if p.name != "decisions.md")]
# decisions.md is a dated record: a path there is where the thing was on that day.
CODE_PATH = re.compile(r"`((?:lambdas|inferctl|stacks|tests|benchmarks|iam|docs)/[\w./-]+)`")


def test_every_file_the_pages_name_exists():
    missing = sorted(
        f"{page.name}: {path}"
        for page in PAGES
        for path in CODE_PATH.findall(page.read_text(encoding="utf-8"))
        if "*" not in path and not (ROOT / path.rstrip("/")).exists()
    )
    assert missing == []
