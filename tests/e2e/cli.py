"""Run the real ``cloudsoc`` command in a subprocess, as a user would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def cloudsoc(home: Path, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "cloudsoc", "--home", str(home), *args],
        capture_output=True,
        text=True,
        errors="backslashreplace",
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"cloudsoc {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def cloudsoc_json(home: Path, *args: str) -> dict[str, object]:
    out = cloudsoc(home, *args, "--json").stdout
    value = orjson.loads(out)
    assert isinstance(value, dict)
    return value


def jsonl(text: str) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in text.splitlines() if line.strip()]
