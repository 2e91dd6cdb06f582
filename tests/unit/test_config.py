"""Config loading: file:line errors, duplicate keys, ${ENV} secrets, the generated example and reference."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloudsoc.config.loader import load_config
from cloudsoc.config.reference import example_yaml, reference_markdown
from cloudsoc.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "cloudsoc.yaml"
    p.write_text(text)
    return p


def test_valid_config(tmp_path: Path) -> None:
    cfg = load_config(
        write(tmp_path, "storage:\n  retention_days: 90\ninputs:\n  trail:\n    type: directory\n    path: /tmp\n")
    )
    assert cfg.storage.retention_days == 90
    assert cfg.inputs["trail"].path == Path("/tmp") and cfg.inputs["trail"].poll_secs == 30


def test_errors_name_file_line_and_setting(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        "storage:\n  path: x.duckdb\ninputs:\n  trail:\n    type: directory\n    path: /tmp\n"
        "    poll_secs: 0\n    pol_secs: 3\n",
    )
    with pytest.raises(ConfigError) as e:
        load_config(p)
    msg = str(e.value)
    assert f"{p}:7: inputs.trail.poll_secs: Input should be greater than 0" in msg
    assert f"{p}:8: inputs.trail.pol_secs: unknown setting" in msg


def test_duplicate_keys_rejected(tmp_path: Path) -> None:
    p = write(tmp_path, "storage:\n  path: a\n  path: b\n")
    with pytest.raises(ConfigError, match=r":3: duplicate key 'storage.path' \(first at line 2\)"):
        load_config(p)


def test_bad_yaml_has_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cloudsoc.yaml:2: invalid YAML"):
        load_config(write(tmp_path, "storage:\n  path: a: b\n"))


def test_env_secrets_interpolated_and_never_echoed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAIL_DIR", "/var/log/trail")
    cfg = load_config(write(tmp_path, "inputs:\n  t:\n    type: directory\n    path: ${TRAIL_DIR}\n"))
    assert cfg.inputs["t"].path == Path("/var/log/trail")
    monkeypatch.setenv("SECRET_VALUE", "hunter2-do-not-print")
    p = write(tmp_path, "storage:\n  retention_days: ${SECRET_VALUE}\n  path: ${MISSING_VAR}\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert "MISSING_VAR is not set" in str(e.value) and ":3:" in str(e.value)
    p = write(tmp_path, "storage:\n  retention_days: ${SECRET_VALUE}\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert "hunter2" not in str(e.value) and ":2: storage.retention_days" in str(e.value)


def test_example_is_valid_and_complete(tmp_path: Path) -> None:
    text = example_yaml()
    cfg = load_config(write(tmp_path, text))
    assert "trail" in cfg.inputs
    for setting in ("retention_days", "max_event_bytes", "poll_secs", "stable_secs", "full_rescan_secs"):
        assert setting in text


def test_reference_doc_is_up_to_date() -> None:
    doc = REPO / "docs" / "specs" / "config.md"
    assert doc.read_text() == reference_markdown(), "run: cloudsoc config reference > docs/specs/config.md"
