"""Service benchmark: /search latency and throughput, raw FAISS time, ingestion rate.

For each database size N it fills a temporary SQLite database with N synthetic entries (random
codes and features written straight through the storage layer), starts a real uvicorn process on
loopback, and measures /search at each concurrency. In-process it times raw FAISS search beside
the service's index + re-rank stage, and batched ingestion through ``ingest_images``.

By default the checkpoint's OOD gate is opened (a copy with threshold +inf) so that synthetic
query images exercise the whole pipeline instead of being refused; ``--keep-gate`` disables that.

    python bench/serve.py --checkpoint checkpoints/acir-compact-64.pt  # -> bench/results/serve.md
    python bench/serve.py --checkpoint tiny.pt --n-images 2000 --requests 40   # smoke check
"""

from __future__ import annotations

import argparse
import hashlib
import io
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import faiss
import httpx
import numpy as np
from PIL import Image
from sqlalchemy import insert

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from host import cpu_identity  # noqa: E402

from app.db.migrate import upgrade  # noqa: E402
from app.db.models import ImageRecord  # noqa: E402
from app.db.session import make_engine  # noqa: E402
from app.services.features import FeatureStore  # noqa: E402
from app.services.ingestion import UploadItem, ingest_images  # noqa: E402
from app.services.runtime import open_runtime  # noqa: E402
from app.services.search import rerank_candidates  # noqa: E402
from app.settings import Settings  # noqa: E402
from index import BinaryIndex  # noqa: E402
from models.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from models.encoder import ImageEncoder  # noqa: E402

ADMIN_KEY = "bench-admin-secret"


def synthetic_png(seed: int, size: int = 96) -> bytes:
    """A smooth scan-like grayscale image (a few Gaussian blobs), PNG-encoded."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    img = np.zeros((size, size), np.float32)
    for _ in range(4):
        cy, cx = (float(v) for v in rng.uniform(0.2, 0.8, 2))
        s = float(rng.uniform(0.05, 0.2))
        img += rng.uniform(0.3, 1.0) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s))
    buf = io.BytesIO()
    Image.fromarray((255 * img / img.max()).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def prepare_checkpoint(path: Path, workdir: Path, open_gate: bool) -> tuple[Path, int, int]:
    """(checkpoint to serve, bits, feature dim); a copy with the gate opened if asked."""
    ckpt = load_checkpoint(path)
    dim = ImageEncoder(ckpt).feature_dim
    if not open_gate:
        return path, ckpt.bits, dim
    ckpt.ood.threshold = math.inf
    served = workdir / "open-gate.pt"
    save_checkpoint(ckpt, served)
    return served, ckpt.bits, dim


def fill_database(url: str, n: int, bits: int, dim: int, sha: str, seed: int = 0) -> None:
    """Insert n synthetic rows (random codes, random unit features) in large batches."""
    rng = np.random.default_rng(seed)
    engine = make_engine(url)
    with engine.begin() as conn:
        for start in range(0, n, 10_000):
            m = min(10_000, n - start)
            codes = rng.integers(0, 256, (m, bits // 8), dtype=np.uint8)
            feats = rng.normal(size=(m, dim)).astype(np.float32)
            feats /= np.linalg.norm(feats, axis=1, keepdims=True)
            rows = [
                {"sha256": hashlib.sha256(f"synthetic-{start + i}".encode()).hexdigest(),
                 "code": codes[i].tobytes(), "feature": feats[i].astype("<f2").tobytes(),
                 "checkpoint_sha256": sha, "tags": {}, "label": f"l{(start + i) % 10}",
                 "collection": "synthetic"}
                for i in range(m)
            ]  # fmt: skip
            conn.execute(insert(ImageRecord), rows)
    engine.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "uvicorn", "--factory", "app.server:app_from_env",
               "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]  # fmt: skip
    with log.open("ab") as out:
        proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server not ready in 300 s")


def run_load(base: str, queries: list[bytes], concurrency: int, n_requests: int, k: int) -> dict:
    """Fire n_requests /search calls from `concurrency` threads; latency and stage statistics."""

    def one(i: int, client: httpx.Client) -> tuple[float, int, dict]:
        began = time.perf_counter()
        files = {"file": ("q.png", queries[i % len(queries)], "image/png")}
        response = client.post(f"{base}/search", files=files, data={"k": k})
        elapsed = (time.perf_counter() - began) * 1000
        body = response.json()
        return elapsed, response.status_code, body.get("timings_ms", {})

    clients = [httpx.Client(timeout=60) for _ in range(concurrency)]
    for i in range(min(10, n_requests)):  # warm-up
        one(i, clients[0])
    began = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(lambda i: one(i, clients[i % concurrency]), range(n_requests)))
    wall = time.perf_counter() - began
    for client in clients:
        client.close()
    latencies = sorted(r[0] for r in results)
    ok = [r[2] for r in results if r[1] == 200]
    return {
        "p50": percentile(latencies, 50), "p95": percentile(latencies, 95),
        "rps": n_requests / wall, "ok": len(ok), "n": n_requests,
        "stage": {s: statistics.fmean(t[s] for t in ok) if ok else float("nan")
                  for s in ("encode", "search", "rerank", "total")},
    }  # fmt: skip


def percentile(sorted_values: list[float], q: float) -> float:
    return float(np.percentile(np.array(sorted_values), q)) if sorted_values else float("nan")


def time_index_stages(url: str, bits: int, dim: int, k: int, multiplier: int) -> dict:
    """Raw FAISS beside the service's index + re-rank stage, per query, interleaved.

    raw FAISS: one ``search(query, k x multiplier)`` on the underlying faiss index (the
    IDMap2 the service holds). Index + re-rank stage: what the service does from the query code
    to the ordered hit list (``BinaryIndex.search_candidates`` with its deterministic tie
    completion, then ``rerank_candidates``: feature lookup and re-rank in one compiled pass).
    Both are timed on the same query back to back, so machine load hits them alike.
    """
    from app.db.session import make_session_factory
    from app.services.reconcile import _read_rows

    engine = make_engine(url)
    ids, codes, blobs = _read_rows(make_session_factory(engine), bits, _read_sha(url))
    engine.dispose()
    index = BinaryIndex.from_codes(bits, ids, codes)
    store = FeatureStore(dim, capacity=ids.size)
    store.add(ids, np.frombuffer(b"".join(blobs), "<f2").reshape(-1, dim))
    rng = np.random.default_rng(1)
    n_query, n_cand = 2000, k * multiplier
    queries = rng.integers(0, 256, (n_query, bits // 8), dtype=np.uint8)
    qfeat = rng.normal(size=(n_query, dim)).astype(np.float32)
    faiss.omp_set_num_threads(1)  # as the service does (settings.faiss_threads)
    raw = index._index  # the underlying faiss index, for the reference time only
    clock = time.perf_counter
    totals = np.zeros(3)
    for _ in range(2):  # the first pass warms caches and is discarded
        totals[:] = 0.0
        for i in range(n_query):
            a = clock()
            raw.search(queries[i : i + 1], n_cand)
            b = clock()
            hamming, cand = index.search_candidates(queries[i], n_cand)
            c = clock()
            rerank_candidates(store, qfeat[i], cand, hamming, k, 0.0, bits)
            totals += [b - a, c - b, clock() - c]
    raw_ms, cand_ms, rr_ms = totals * 1000 / n_query
    return {
        "raw_faiss_ms": raw_ms, "candidates_ms": cand_ms, "rerank_stage_ms": rr_ms,
        "index_rerank_ms": cand_ms + rr_ms,
    }  # fmt: skip


def _read_sha(url: str) -> str:
    engine = make_engine(url)
    with engine.connect() as conn:
        sha = conn.execute(ImageRecord.__table__.select().limit(1)).first()
    engine.dispose()
    return str(sha.checkpoint_sha256) if sha else ""


def bench_ingestion(
    checkpoint: Path, workdir: Path, n_images: int, batch: int, threads: int | None
) -> float:
    """Images/s through ``ingest_images`` (decode, hash, encode, gate, DB, index, save)."""
    url = f"sqlite:///{workdir / 'ingest.db'}"
    upgrade(url)
    settings = Settings(
        database_url=url, checkpoint=checkpoint, index_dir=workdir / "ingest-index",
        ingest_batch_size=batch, torch_threads=threads,
    )  # fmt: skip
    items = [UploadItem(synthetic_png(10_000 + i), f"{i}.png") for i in range(n_images)]
    rt = open_runtime(settings)
    try:
        began = time.perf_counter()
        outcomes = ingest_images(rt, items)
        elapsed = time.perf_counter() - began
    finally:
        rt.close()
    indexed = sum(o.status == "indexed" for o in outcomes)
    return indexed / elapsed


def bench_size(
    args: argparse.Namespace, ckpt: Path, bits: int, dim: int, n: int, work: Path
) -> tuple[list[str], str]:
    """(HTTP rows, one per concurrency; the index-stage row) for n indexed images."""
    url = f"sqlite:///{work / f'db-{n}.db'}"
    upgrade(url)
    fill_database(url, n, bits, dim, load_checkpoint(ckpt).sha256)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACIR_")}
    env.update({
        "ACIR_DATABASE_URL": url, "ACIR_CHECKPOINT": str(ckpt),
        "ACIR_INDEX_DIR": str(work / f"index-{n}"), "ACIR_AUDIT_SEARCHES": "false",
    })  # fmt: skip
    if args.torch_threads:
        env["ACIR_TORCH_THREADS"] = str(args.torch_threads)
    queries = [synthetic_png(i) for i in range(32)]
    st = time_index_stages(url, bits, dim, args.k, args.multiplier)
    us = {key: 1000 * value for key, value in st.items()}
    stage_row = (
        f"| {n:,} | {us['raw_faiss_ms']:.1f} | {us['candidates_ms']:.1f} | "
        f"{us['rerank_stage_ms']:.1f} | {us['index_rerank_ms']:.1f} | "
        f"{st['index_rerank_ms'] / st['raw_faiss_ms']:.2f}× |"
    )
    print(stage_row, flush=True)
    rows = []
    proc = start_server(env, port := free_port(), work / "server.log")
    try:
        for c in args.concurrency:
            r = run_load(f"http://127.0.0.1:{port}", queries, c, args.requests, args.k)
            rows.append(
                f"| {n:,} | {c} | {r['p50']:.1f} | {r['p95']:.1f} | {r['rps']:.1f} | "
                f"{r['ok']}/{r['n']} | {r['stage']['encode']:.2f} | "
                f"{r['stage']['search'] + r['stage']['rerank']:.3f} | {r['stage']['total']:.2f} |"
            )
            print(rows[-1], flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return rows, stage_row


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ints = lambda text: [int(v) for v in text.split(",") if v]  # noqa: E731
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=REPO / "checkpoints/acir-compact-64.pt")
    parser.add_argument("--n-images", type=ints, default=[10_000, 100_000])
    parser.add_argument("--concurrency", type=ints, default=[1, 8])
    parser.add_argument("--requests", type=int, default=200, help="requests per concurrency level")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--multiplier", type=int, default=10, help="candidates = k x this")
    parser.add_argument("--ingest-images", type=int, default=500)
    parser.add_argument("--ingest-batch", type=int, default=32)
    parser.add_argument("--torch-threads", type=int, default=None)
    parser.add_argument("--keep-gate", action="store_true", help="serve the checkpoint as is")
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/serve.md")
    return parser.parse_args(argv)


HTTP_HEADER = [
    "| indexed | concurrency | p50 ms | p95 ms | req/s | 200s | encode ms (server) "
    "| search+rerank ms (server) | total ms (server) |",
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
]
STAGE_HEADER = [
    "| indexed | raw FAISS µs | candidate fetch µs | lookup + re-rank µs "
    "| index + re-rank stage µs | stage / raw FAISS |",
    "|---:|---:|---:|---:|---:|---:|",
]


def machine_lines(args: argparse.Namespace, argv: list[str] | None) -> list[str]:
    """Command, machine, date, checkpoint and what else was running: the context of the numbers."""
    cpu = cpu_identity()["cpu"]
    sha = hashlib.sha256(args.checkpoint.read_bytes()).hexdigest()
    others = subprocess.run(
        ["pgrep", "-fa", "acir train|acir eval|bench/retrieval"], capture_output=True, text=True
    ).stdout.strip()
    command = " ".join(["python", "bench/serve.py", *(sys.argv[1:] if argv is None else argv)])
    return [
        f"- command: `{command}`",
        f"- machine: {cpu}, {os.cpu_count()} cores; {time.strftime('%Y-%m-%d %H:%M %Z')}",
        f"- checkpoint: `{args.checkpoint}` sha256 `{sha[:16]}…`",
        f"- load average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())}; other "
        f"jobs: {'none' if not others else f'{len(others.splitlines())} (' + others[:120] + ')'}",
    ]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    context = machine_lines(args, argv)
    print("\n".join(context), flush=True)
    with tempfile.TemporaryDirectory(prefix="acir-bench-") as tmp:
        work = Path(tmp)
        ckpt, bits, dim = prepare_checkpoint(args.checkpoint, work, not args.keep_gate)
        results = [bench_size(args, ckpt, bits, dim, n, work) for n in args.n_images]
        rate = bench_ingestion(
            ckpt, work, args.ingest_images, args.ingest_batch, args.torch_threads
        )
    load_end = " ".join(f"{v:.2f}" for v in os.getloadavg())
    n_cand = args.k * args.multiplier
    lines = [
        "# /search benchmark", "", *context, f"- load average at end: {load_end}",
        f"- {bits}-bit codes, feature dim {dim}; "
        f"gate {'as shipped' if args.keep_gate else 'opened'}; "
        f"k={args.k}, {n_cand} candidates; synthetic database rows (random codes and features)",
        "", f"## HTTP `/search` ({args.requests} requests per row, loopback, one uvicorn worker)",
        "", *HTTP_HEADER, *(row for rows, _ in results for row in rows), "",
        "## Index + re-rank stage vs raw FAISS (in-process, one thread, 2000 random queries, µs)",
        "", f"raw FAISS = one `search(query, {n_cand})` on the service's faiss index; the stage = "
        "`search_candidates` (one FAISS search while ids are stored in ascending order, "
        "else search + tie-group completion; (distance, id) order) + "
        "`rerank_candidates` (feature lookup + re-rank in one compiled pass + hit list).", "",
        *STAGE_HEADER,
        *(stage for _, stage in results), "",
        f"## Ingestion\n\nBatched (`ingest_images`, batch {args.ingest_batch}, the `POST /index` "
        f"path): {args.ingest_images} synthetic PNGs at **{rate:.1f} images/s**.",
    ]  # fmt: skip
    print(lines[-1])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
