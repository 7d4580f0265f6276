"""Real storage servers on loopback for the tests: moto's S3 server and Azurite (Azure Blob).

Both are started once per session on free 127.0.0.1 ports and stopped at the end. Azurite comes from npm:
scripts/test.sh installs it under ~/.cache/batchinfer-ci/azurite (or set BATCHINFER_AZURITE to its
`azurite-blob` executable).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

AZURITE_KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/"
               "K1SZFPTOtr/KBHBeksoGMGw==")  # Azurite's documented development key, not a secret
AZURITE_ACCOUNT = "devstoreaccount1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, name: str, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with code {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{name} did not listen on 127.0.0.1:{port} within {timeout} s")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """moto's standalone S3 server; yields its endpoint URL."""
    port = free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, proc, "moto_server")
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)
        log.close()


def azurite_executable() -> str | None:
    candidates = [os.environ.get("BATCHINFER_AZURITE"),
                  str(Path.home() / ".cache/batchinfer-ci/azurite/node_modules/.bin/azurite-blob"),
                  shutil.which("azurite-blob")]
    return next((c for c in candidates if c and Path(c).is_file()), None)


@pytest.fixture(scope="session")
def azurite_server(tmp_path_factory):
    """Azurite's Blob service; yields its blob endpoint URL (account devstoreaccount1)."""
    exe = azurite_executable()
    if exe is None:
        pytest.fail("Azurite is not installed: run scripts/test.sh (it runs npm install azurite) "
                    "or set BATCHINFER_AZURITE to the azurite-blob executable")
    port = free_port()
    data = tmp_path_factory.mktemp("azurite")
    log = open(data / "azurite.log", "w")
    proc = subprocess.Popen([exe, "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", str(data),
                             "--loose", "--skipApiVersionCheck", "--silent"], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, proc, "azurite-blob")
        yield f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}"
    finally:
        stop(proc)
        log.close()
