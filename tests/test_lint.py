"""ruff (configured in pyproject.toml) finds nothing: lint and format, so the test command fails on a violation."""

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUFF = [sys.executable, "-m", "ruff"]


def test_ruff_lint_is_clean():
    result = subprocess.run(
        [*RUFF, "check", "--output-format", "concise", "."], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_ruff_format_is_clean():
    result = subprocess.run([*RUFF, "format", "--check", "."], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, "run `.venv/bin/ruff format .`:\n" + result.stdout[-4000:] + result.stderr[-2000:]
