"""The type checker (mypy, configured in pyproject.toml) finds nothing in src/ (issue 29)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

pytestmark = pytest.mark.slow


def test_mypy_finds_no_error():
    mypy = Path(sys.executable).parent / "mypy"
    proc = subprocess.run(
        [str(mypy)], cwd=REPO, capture_output=True, text=True, timeout=600, encoding="utf-8"
    )
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert proc.stdout.startswith("Success: no issues found")
