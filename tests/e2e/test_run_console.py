"""`cloudsoc run` serves the console beside the pipeline: the first start prints the admin password once, the
console answers on 127.0.0.1 while the daemon ingests, the daemon's SIGTERM stops both cleanly, and a port in use
is a clear error."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.e2e.cli import SHARED_DATA, cloudsoc

OTRF = SHARED_DATA / "cloudaudit" / "otrf-security-datasets" / "ec2_proxy_s3_exfiltration_2020-09-14011940.json"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _login_page(proc: subprocess.Popen[str], port: int, secs: float) -> httpx.Response | None:
    """The console's log-in page once it answers (None if the process ended or time ran out first)."""
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/login", timeout=2, trust_env=False)
        except httpx.TransportError:
            time.sleep(0.2)
    return None


def _config(tmp_path: Path, port: int) -> Path:
    trail = tmp_path / "trail"
    trail.mkdir()
    (trail / OTRF.name).write_bytes(OTRF.read_bytes())
    cfg = tmp_path / "cloudsoc.yaml"
    cfg.write_text(
        f"inputs:\n  trail:\n    type: directory\n    path: {trail}\n    poll_secs: 0.2\n    stable_secs: 0\n"
        f"console:\n  port: {port}\n"
    )
    return cfg


def test_run_serves_the_console_and_stops_with_the_daemon(tmp_path: Path) -> None:
    port = _free_port()
    cfg = _config(tmp_path, port)
    proc = subprocess.Popen(
        [sys.executable, "-m", "cloudsoc", "--home", str(tmp_path / "home"), "run", "-c", str(cfg)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        page = _login_page(proc, port, 60)
        assert page is not None and page.status_code == 200, proc.stderr.read() if proc.poll() is not None else ""
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/me", trust_env=False).status_code == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert "First start: created console user admin with password" in stderr
    assert f"console: http://127.0.0.1:{port}/" in stderr and "stopped:" in stderr
    with socket.socket() as probe:  # the port is free again
        probe.bind(("127.0.0.1", port))


def test_a_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        cfg = _config(tmp_path, busy.getsockname()[1])
        proc = cloudsoc(tmp_path / "home", "run", "-c", str(cfg), check=False, timeout=60)
    assert proc.returncode != 0
    assert "console: cannot listen on 127.0.0.1" in proc.stderr and "--no-console" in proc.stderr


def test_demo_then_serves_its_company(tmp_path: Path) -> None:
    port = _free_port()
    args = ["demo", "--events", "2000", "--days", "2", "--serve", "--port", str(port)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "cloudsoc", "--home", str(tmp_path / "home"), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        page = _login_page(proc, port, 180)
        assert page is not None and page.status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert f"Console: http://127.0.0.1:{port}/" in stdout and "First start: created console user admin" in stderr
