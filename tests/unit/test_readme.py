"""The README opens with the two commands people run first, and CI runs the second verbatim."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    first_block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert first_block is not None, "README.md must open with a bash block"
    assert text.index(first_block.group(0)) < 200, "the commands must come first"
    return [
        line.strip()
        for line in first_block.group(1).splitlines()
        if line.strip() and not line.startswith("#")
    ]


def test_readme_opens_with_serve_and_test_commands():
    serve, test = readme_commands()
    assert serve.endswith("pdm run serve")
    assert test.endswith("pdm run test")
    for command in (serve, test):
        assert 'pip install pdm "unearth<0.19" "hishel[httpx]<2"' in command


def test_ci_runs_the_readme_test_command_verbatim():
    _, test = readme_commands()
    ci = (ROOT / ".ci" / "run").read_text()
    assert test in ci.splitlines()


def test_pdm_scripts_exist_for_every_documented_command():
    pyproject = (ROOT / "pyproject.toml").read_text()
    for script in ("serve", "worker", "test", "lint", "typecheck", "check", "format"):
        assert re.search(rf"^{script} = ", pyproject, re.M), script
