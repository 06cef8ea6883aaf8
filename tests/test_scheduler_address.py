"""``--scheduler`` at something that is not a Dask scheduler ends in one line, exit 2.

Every server here is started by the test on 127.0.0.1 at a free port: one that accepts
and stays silent, one that writes bytes first that are not Dask's, an HTTP server, and a
port that nothing listens on. The command waits for a Dask handshake for
``RESCUE_SIM_SCHEDULER_TIMEOUT`` seconds (2 here) and then gives up with one line; the
subprocess's own timeout is only a safety net against a hang.
"""

from __future__ import annotations

import http.server
import socket
import socketserver
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_checks import QUICK, one_error_line, subprocess_env

pytest.importorskip("distributed")

TIMEOUT_ENV = "RESCUE_SIM_SCHEDULER_TIMEOUT"


class _Silent(socketserver.BaseRequestHandler):
    """Accepts and says nothing until the client hangs up."""

    def handle(self) -> None:
        self.request.recv(1 << 16)
        while self.request.recv(1 << 16):
            pass


class _Garbage(_Silent):
    """Speaks first, with bytes that are no Dask frame: read as one, "HTTP/1.1" is a
    length of 3.07 EiB."""

    def handle(self) -> None:
        self.request.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        super().handle()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def _serve(server: socketserver.TCPServer) -> Iterator[str]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"tcp://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(params=["silent", "garbage", "http"])
def not_a_scheduler(request: pytest.FixtureRequest) -> Iterator[str]:
    """The address of a server on 127.0.0.1 that is not a Dask scheduler."""
    server: socketserver.TCPServer
    if request.param == "http":
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Quiet)
    else:
        handler = _Silent if request.param == "silent" else _Garbage
        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    yield from _serve(server)


@pytest.fixture
def closed_port() -> str:
    """A port on 127.0.0.1 that nothing listens on (bound, then let go)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"tcp://127.0.0.1:{port}"


def _run(address: str, out: Path, **env: str) -> subprocess.CompletedProcess[str]:
    args = [
        sys.executable, "-m", "sim", "run", str(QUICK), "--days", "2", "--replications", "1",
        "--scheduler", address, "--out", str(out),
    ]  # fmt: skip
    return subprocess.run(
        args,
        capture_output=True,
        text=True,
        env=subprocess_env(**{TIMEOUT_ENV: "2", **env}),
        timeout=60,  # a safety net against a hang, not the check
    )


def test_a_server_that_is_not_a_dask_scheduler_is_one_line(
    not_a_scheduler: str, tmp_path: Path
) -> None:
    proc = _run(not_a_scheduler, tmp_path / "run")
    assert proc.returncode == 2, proc.stderr
    line = one_error_line(proc.stdout, proc.stderr)
    assert line.startswith(
        f"error: --scheduler: cannot reach the Dask scheduler at {not_a_scheduler}"
    )
    assert not (tmp_path / "run").exists()


def test_a_closed_port_is_one_line(closed_port: str, tmp_path: Path) -> None:
    proc = _run(closed_port, tmp_path / "run")
    assert proc.returncode == 2, proc.stderr
    line = one_error_line(proc.stdout, proc.stderr)
    assert line.startswith(f"error: --scheduler: cannot reach the Dask scheduler at {closed_port}")
    assert "refused" in line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1:8786", "tcp://127.0.0.1", "tcp://:8786", "tcp://127.0.0.1:0",
     "tcp://127.0.0.1:65536", "tcp://127.0.0.1:port", "http://127.0.0.1:8786",
     "inproc://127.0.0.1/1/1", ""],
)  # fmt: skip
def test_an_address_that_is_not_a_schedulers_is_one_line(address: str, tmp_path: Path) -> None:
    proc = _run(address, tmp_path / "run")
    assert proc.returncode == 2, proc.stderr
    line = one_error_line(proc.stdout, proc.stderr)
    assert line == (
        f"error: --scheduler: {address!r}: give the scheduler's address as tcp://HOST:PORT "
        "(or tls://, ws://, wss://)"
    )
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("seconds", ["0", "-1", "nan", "inf", "ten"])
def test_a_timeout_that_means_nothing_is_one_line(
    seconds: str, closed_port: str, tmp_path: Path
) -> None:
    proc = _run(closed_port, tmp_path / "run", **{TIMEOUT_ENV: seconds})
    assert proc.returncode == 2, proc.stderr
    line = one_error_line(proc.stdout, proc.stderr)
    assert line.startswith(f"error: {TIMEOUT_ENV}: {seconds!r}: give the seconds")
    assert not (tmp_path / "run").exists()
