"""The documents agree with the repository: the architecture page's tree names what exists and every package."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

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


README = ROOT / "README.md"
GUIDES = ("operator-guide.md", "configuration.md", "results.md", "performance.md", "architecture.md", "decisions.md")


def test_the_readme_starts_short_and_links_every_page():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 200
    for page in GUIDES:
        assert f"(docs/{page})" in text, page
        assert (ROOT / "docs" / page).exists(), page


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    found = set()
    for heading in re.findall(r"(?m)^#{1,6} (.+)$", page.read_text(encoding="utf-8")):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        found.add(slug)
    return found


def test_every_link_between_the_pages_resolves_to_a_page_and_a_heading():
    broken = []
    for page in PAGES:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text(encoding="utf-8")):
            if target.startswith(("http://", "https://")):
                continue
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            if not linked.exists():
                broken.append(f"{page.name}: {target}")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                broken.append(f"{page.name}: {target} (no such heading)")
    assert broken == []


def test_every_page_the_code_points_users_to_exists_with_its_heading():
    """Error messages send users to a page and a heading (``docs/operator-guide.md#ground-truth``)."""
    pointed = {
        match
        for folder in ("inferctl", "lambdas", "stacks")
        for source in (ROOT / folder).rglob("*.py")
        for match in re.findall(r"docs/[\w-]+\.md(?:#[\w-]+)?", source.read_text(encoding="utf-8"))
    }
    assert pointed
    for reference in pointed:
        path, _, anchor = reference.partition("#")
        assert (ROOT / path).exists(), reference
        assert not anchor or anchor in anchors(ROOT / path), reference


def documented_commands() -> list[tuple[str, list[str]]]:
    """Every inferctl command line in the pages' bash blocks (``make demo ARGS=...`` as ``demo ...``)."""
    found = []
    for page in PAGES:
        for block in re.findall(r"```bash\n(.*?)```", page.read_text(encoding="utf-8"), flags=re.S):
            for line in block.replace("\\\n", " ").splitlines():
                words = shlex.split(line.replace(" &", ""), comments=True)
                if words[:1] in (["inferctl"], [".venv/bin/inferctl"]):
                    found.append((page.name, words[1:]))
                elif words[:2] == ["make", "demo"]:
                    extra = [w.split("=", 1)[1] for w in words[2:] if w.startswith("ARGS=")]
                    images = [f"--images={w.split('=', 1)[1]}" for w in words[2:] if w.startswith("IMAGES=")]
                    found.append((page.name, ["demo", *images, *(part for a in extra for part in shlex.split(a))]))
    return found


def test_every_documented_command_line_parses():
    """What the pages tell people to type is accepted by the tool as it is now (options, verbs, values)."""
    from inferctl.cli import build_parser

    commands = documented_commands()
    assert len(commands) >= 40
    for page, words in commands:
        try:
            build_parser().parse_args(words)
        except SystemExit:
            raise AssertionError(f"{page}: inferctl {' '.join(words)}") from None


# A repository path in a comment or a docstring: folders and a file with its suffix, or a bare file name with
# its suffix that must exist somewhere in the tree
PATH_IN_CODE = re.compile(
    r"(?<![\w./-])((?:[\w-]+/)+[\w-]+\.(?:py|md|html|json|txt|toml))\b|(?<![\w./-])([\w-]+\.(?:py|md|html))\b"
)
SKIPPED = (".venv", "node_modules", "cdk.out", "out", ".git")
GENERATED = ("out", "cdk.out")  # folders the tools write into


def test_every_path_the_code_names_in_comments_and_docstrings_exists():
    """Comments and docstrings point readers at files; a file that moved leaves a pointer to nothing (the pages'
    own test checks Markdown, this one the code). A path counts from the repository, the file's folder or a
    package root; a bare file name anywhere in the tree."""
    import io
    import tokenize

    names: set[str] = set()
    sources: list[Path] = []
    for folder, subfolders, files in os.walk(ROOT):  # not into .venv or node_modules: tens of thousands of files
        subfolders[:] = [name for name in subfolders if name not in SKIPPED]
        names |= {*files, *subfolders}
        sources += [Path(folder) / name for name in files if name.endswith(".py")]
    roots = (ROOT, ROOT / "lambdas", ROOT / "lambdas" / "inference", ROOT / "inferctl", ROOT / "tests")
    missing = []
    for source in sorted(sources):
        tokens = tokenize.generate_tokens(io.StringIO(source.read_text(encoding="utf-8")).readline)
        for token in tokens:
            text = token.string
            if token.type == tokenize.STRING and not text.lstrip("rbuf").startswith(('"""', "'''")):
                continue
            if token.type not in (tokenize.COMMENT, tokenize.STRING):
                continue
            for match in PATH_IN_CODE.finditer(text):
                if match.group(1) and match.group(1).split("/")[0] in GENERATED:
                    continue  # what the tools write (out/bench.json): not in a clean clone, and not meant to be
                if match.group(1):
                    found = any((root / match.group(1)).exists() for root in (*roots, source.parent))
                else:
                    found = match.group(2) in names
                if not found:
                    missing.append(f"{source.relative_to(ROOT)}:{token.start[0]} {match.group(0)}")
    assert missing == []
