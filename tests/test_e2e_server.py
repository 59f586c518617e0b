"""End to end: a real uvicorn process, migrations run first with alembic, restart in between."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from conftest import ADMIN

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _server(env: dict[str, str], port: int, log: Path) -> Iterator[str]:
    command = [sys.executable, "-m", "uvicorn", "--factory", "app.server:app_from_env",
               "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]  # fmt: skip
    with log.open("ab") as out:
        proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, proc, log)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_ready(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"server not ready in 60 s:\n{log.read_text()[-3000:]}")


def _search(base: str, blob: bytes) -> list[tuple[int, int, float]]:
    response = httpx.post(f"{base}/search", files={"file": ("q.png", blob)}, data={"k": 4})
    assert response.status_code == 200, response.text
    return [(r["id"], r["hamming"], r["similarity"]) for r in response.json()["results"]]


def test_ingest_search_restart_search(database_url, checkpoint_factory, tmp_path, pngs, photo_png):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACIR_")}
    env.update({
        "ACIR_DATABASE_URL": database_url,
        "ACIR_CHECKPOINT": str(checkpoint_factory("calibrated")),
        "ACIR_INDEX_DIR": str(tmp_path / "index"),
        "ACIR_ADMIN_API_KEYS": f"{ADMIN[0]}:{ADMIN[1]}",
        "ACIR_TORCH_THREADS": "1",
    })  # fmt: skip
    subprocess.run([sys.executable, "-m", "alembic", "upgrade", "head"], cwd=REPO, env=env,
                   check=True, capture_output=True)  # fmt: skip
    port, log = _free_port(), tmp_path / "server.log"
    with _server(env, port, log) as base:
        files = [("files", (f"{i}.png", b, "image/png")) for i, b in enumerate(pngs)]
        headers = {"X-API-Key": ADMIN[1]}
        ingested = httpx.post(f"{base}/index", files=files, headers=headers, timeout=30)
        assert ingested.status_code == 200 and ingested.json()["indexed"] == len(pngs)
        first = [_search(base, blob) for blob in pngs[:3]]
        assert httpx.post(f"{base}/search", files={"file": ("p", photo_png)}).status_code == 422
    with _server(env, _free_port(), log) as base:
        assert httpx.get(f"{base}/stats").json()["index_source"] == "loaded"
        assert [_search(base, blob) for blob in pngs[:3]] == first
    assert first[0][0][1] == 0 and len(first[0]) == 4
