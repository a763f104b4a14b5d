"""The docs say what the code does: every `edgebench` command line in them parses (run with
--help appended, in-process), every scenario they name loads, every relative link resolves."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgebench.cli import main
from edgebench.plan.scenario import load_scenario
from emulator import load_world

ROOT = Path(__file__).resolve().parent.parent
READMES = ("README.md", "bench/README.md", "scenarios/README.md", "results/README.md")
PAGES = sorted([*(ROOT / name for name in READMES), *ROOT.glob("docs/*.md")])
LINK = re.compile(r"\]\(([^)\s]+)\)")
FENCE = re.compile(r"```(?:sh|bash|console)?\n(.*?)```", re.S)


def command_lines(page: Path) -> list[str]:
    """command_lines are the `edgebench ...` lines of a page's code blocks (continued lines
    joined), without the `.venv/bin/` they are often written with."""
    lines = []
    for block in FENCE.findall(page.read_text()):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip().removeprefix(".venv/bin/")
            if line.startswith("edgebench ") and "<" not in line:
                lines.append(line)
    return lines


COMMANDS = [
    (page.relative_to(ROOT).as_posix(), line) for page in PAGES for line in command_lines(page)
]


def test_the_docs_have_command_lines_to_check():
    assert len(COMMANDS) > 15
    assert len(PAGES) >= 5


@pytest.mark.parametrize(("page", "line"), COMMANDS)
def test_every_command_line_in_the_docs_parses(page, line):
    words = shlex.split(line, comments=True)[1:]
    done = CliRunner().invoke(main, [*words, "--help"])
    assert done.exit_code == 0, f"{page}: {line}: {done.output[-500:]}"
    for word in words:
        if word.startswith("scenarios/worlds/"):
            load_world(ROOT / word)  # the world it names is there, and loads
        elif word.startswith("scenarios/") and word.endswith(".toml"):
            for path in sorted(ROOT.glob(word)) or [ROOT / word]:  # a glob: every file
                load_scenario(path)  # the scenario it names is there, and loads


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(page):
    for target in LINK.findall(page.read_text()):
        if target.startswith(("http://", "https://", "#", "mailto:")):
            continue
        path = (page.parent / target.split("#", 1)[0]).resolve()
        assert path.exists(), f"{page.relative_to(ROOT)}: ({target}) is not there"
