# The code checks CI must keep green: ruff over everything we write, mypy
# --strict over the package (pyproject.toml holds both configurations).

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    path = BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[test]')")
    return found


def test_code_quality_ruff() -> None:
    result = subprocess.run([tool("ruff"), "check", "src", "tests", "scripts"], cwd=REPO,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_code_quality_mypy_strict() -> None:
    result = subprocess.run([tool("mypy")], cwd=REPO, capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
