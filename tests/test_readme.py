"""The README's two commands are the ones CI and the demo test run: read from the README itself."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> dict[str, list[str]]:
    """The Quickstart's two command lines, each split at ``&&`` into its steps."""
    quickstart = ROOT.joinpath("README.md").read_text().split("## Quickstart", 1)[1]
    lines = [line for line in re.findall(r"```bash\n(.*?)```", quickstart, re.S)[0].splitlines()
             if line.startswith("python3 -m venv")]
    assert len(lines) == 2, lines
    steps = [[step.strip() for step in line.split("&&")] for line in lines]
    return {"demo": next(s for s in steps if s[-1].endswith("dynshift demo")),
            "tests": next(s for s in steps if s[-1].endswith("-m pytest"))}


def test_ci_runs_the_readme_test_command_step_by_step():
    ci = [line.strip() for line in ROOT.joinpath(".ci", "run").read_text().splitlines()]
    expected = readme_commands()["tests"]
    found = [next(i for i, line in enumerate(ci) if line.replace("--quiet ", "") == step) for step in expected]
    assert found == sorted(found)  # every step of the README's command, in its order


def test_the_demo_command_installs_what_the_tests_install_and_runs_the_demo_entry_point():
    from dynshift_agents.cli import build_parser

    demo, tests = readme_commands()["demo"], readme_commands()["tests"]
    assert demo[:2] == tests[:2] and demo[2] == tests[2].replace(",sweep", "")
    assert demo[-1] == ".venv/bin/dynshift demo"
    assert build_parser().parse_args(["demo"]).run.__name__ == "_demo"  # the command the demo test calls
