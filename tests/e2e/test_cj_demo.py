"""`pdm run cj-demo` as a command: it starts the service itself, runs a session, writes the
report and figures, and exits 0 only when every check passed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


def cj_demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "demos.cj_demo", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=220,
        check=False,
    )


def test_the_demo_passes_and_writes_its_report(tmp_path: Path) -> None:
    done = cj_demo("--arms", "fresh,cache", "--out", str(tmp_path))

    assert done.returncode == 0, done.stdout + done.stderr
    report = (tmp_path / "cj-demo.md").read_text()
    assert "Result: **every check passed**" in report
    assert "| provider calls (service's counter) | 225 | 150 |" in report
    for figure in ("cj-demo-recovery.png", "cj-demo-agreement.png", "cj-demo-position.png"):
        assert (tmp_path / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({figure})" in report
    assert "fresh" in done.stdout
    assert "cache" in done.stdout
    assert "FAIL" not in done.stdout


def test_an_unknown_arm_is_refused_with_usage() -> None:
    done = cj_demo("--arms", "fresh,nonsense")
    assert done.returncode == 2
    assert "--arms takes names from" in done.stderr
