"""The ``acir`` command line: data, training, evaluation, indexing and serving."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(help="ACIR: content-based medical image retrieval.", no_args_is_help=True)
data_app = typer.Typer(help="Build data sets.", no_args_is_help=True)
index_app = typer.Typer(help="Manage the search index.", no_args_is_help=True)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(index_app, name="index")
app.add_typer(db_app, name="db")

DEFAULT_DATA = Path("data/brain-atlas")
DEFAULT_CHECKPOINT = Path("checkpoints/acir-compact-64.pt")


def _write_json(payload: dict[str, Any], path: Path | None) -> None:
    text = json.dumps(payload, indent=2, sort_keys=True)
    if path is None:
        typer.echo(text)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")
    typer.echo(f"wrote {path}")


@data_app.command("brain-atlas")
def data_brain_atlas(
    out: Annotated[Path, typer.Option(help="Output directory.")] = DEFAULT_DATA,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same files).")] = 0,
) -> None:
    """Build BrainAtlas2D (Colin27 + MNI152 patches, AAL classes, split by volume)."""
    from models.data import DataSourceMissing, build_brain_atlas

    try:
        manifest = build_brain_atlas(out, seed=seed, progress=True)
    except DataSourceMissing as exc:
        typer.secho(str(exc), fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2) from exc
    typer.echo(f"wrote {manifest}")


@app.command()
def train(
    data: Annotated[Path, typer.Option(help="BrainAtlas2D directory.")] = DEFAULT_DATA,
    out: Annotated[Path, typer.Option(help="Checkpoint to write.")] = DEFAULT_CHECKPOINT,
    preset: Annotated[str, typer.Option(help="paper | compact | tiny")] = "compact",
    bits: Annotated[int, typer.Option(help="Hash code length (multiple of 8).")] = 64,
    epochs: Annotated[int, typer.Option()] = 30,
    batch_size: Annotated[int, typer.Option()] = 128,
    lr: Annotated[float, typer.Option()] = 2e-3,
    decoder_epochs: Annotated[int, typer.Option()] = 8,
    seed: Annotated[int, typer.Option()] = 0,
    threads: Annotated[int, typer.Option(help="torch CPU threads.")] = 2,
    stage: Annotated[
        str, typer.Option(help="all | 1 | 2 (decoder + OOD on --out) | ood (refit the gate only)")
    ] = "all",
    detector: Annotated[str, typer.Option(help="OOD detector to ship.")] = "combined",
    target_fpr: Annotated[float, typer.Option(help="In-distribution false rejection.")] = 0.05,
    run_dir: Annotated[Path | None, typer.Option(help="Resumable state.")] = None,
    resume: Annotated[bool, typer.Option(help="Resume from --run-dir.")] = False,
) -> None:
    """Train the hashing network (stage 1), then the OOD decoder and gate (stage 2)."""
    from models.checkpoint import save_checkpoint
    from models.config import preset as make_preset
    from models.pipeline import refit_ood_only, retrain_stage2, train_checkpoint
    from models.training import TrainSettings

    settings = TrainSettings(
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        decoder_epochs=decoder_epochs,
        seed=seed,
        threads=threads,
    )
    if stage == "2":
        ckpt = retrain_stage2(out, data, settings, detector, target_fpr)
    elif stage == "ood":
        ckpt = refit_ood_only(out, data, detector, target_fpr, threads)
    elif stage in ("all", "1"):
        run_dir = run_dir or out.parent / f".run-{out.stem}"
        config = make_preset(preset, bits=bits)
        ckpt = train_checkpoint(
            config,
            data,
            settings,
            run_dir,
            detector,
            target_fpr,
            resume=resume,
            with_stage2=stage == "all",
        )
    else:
        raise typer.BadParameter("stage must be all, 1, 2 or ood", param_hint="--stage")
    sha = save_checkpoint(ckpt, out)
    typer.echo(f"wrote {out} (sha256 {sha[:12]}, best val mAP {ckpt.training.get('best_val_map')})")


@app.command("eval")
def evaluate(
    checkpoint: Annotated[Path, typer.Option(help="Checkpoint file.")] = DEFAULT_CHECKPOINT,
    data: Annotated[Path, typer.Option(help="Data set directory.")] = DEFAULT_DATA,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write JSON here.")] = None,
) -> None:
    """Retrieval quality: queries = query split, database = db split."""
    from app.evaluation import evaluate_retrieval

    _write_json(evaluate_retrieval(checkpoint, data), json_out)


@app.command("eval-ood")
def evaluate_ood_command(
    checkpoint: Annotated[Path, typer.Option(help="Checkpoint file.")] = DEFAULT_CHECKPOINT,
    data: Annotated[Path, typer.Option(help="Data set directory.")] = DEFAULT_DATA,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write JSON here.")] = None,
) -> None:
    """OOD detection: AUROC, FPR@95%TPR and rejection rates per detector and OOD set."""
    from models.checkpoint import load_checkpoint
    from models.ood_eval import evaluate_ood, ood_report_markdown

    report = evaluate_ood(load_checkpoint(checkpoint), data)
    typer.echo(ood_report_markdown(report))
    if json_out is not None:
        _write_json(report, json_out)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the Alembic migrations to the configured database (ACIR_DATABASE_URL)."""
    from app.db.migrate import upgrade
    from app.settings import get_settings

    settings = get_settings()
    _ensure_sqlite_folder(settings.database_url)
    upgrade(settings.database_url)
    typer.echo(f"database at head: {settings.database_url}")


def _ensure_sqlite_folder(url: str) -> None:
    prefix = "sqlite:///"
    if url.startswith(prefix) and url != prefix + ":memory:":
        Path(url[len(prefix) :]).parent.mkdir(parents=True, exist_ok=True)


def _settings(checkpoint: Path | None) -> Any:
    from app.settings import get_settings

    settings = get_settings()
    return (
        settings if checkpoint is None else settings.model_copy(update={"checkpoint": checkpoint})
    )


@index_app.command("add")
def index_add(
    source: Annotated[Path, typer.Argument(help="Data set with manifest.csv, or image folder.")],
    split: Annotated[str | None, typer.Option(help="Manifest split to index (e.g. db).")] = None,
    collection: Annotated[str | None, typer.Option(help="Collection name for a folder.")] = None,
    checkpoint: Annotated[Path | None, typer.Option(help="Override ACIR_CHECKPOINT.")] = None,
) -> None:
    """Bulk ingestion through the same path as POST /index (batched, idempotent, OOD-gated)."""
    from tqdm import tqdm

    from app.bulk import collect_items
    from app.services.ingestion import ingest_images
    from app.services.runtime import open_runtime
    from app.services.uploads import UploadItem

    entries = collect_items(source, split, collection)
    if not entries:
        raise typer.BadParameter(f"no images found in {source}", param_hint="SOURCE")
    runtime = open_runtime(_settings(checkpoint))
    counts = {"indexed": 0, "duplicate": 0, "rejected": 0}
    try:
        with tqdm(total=len(entries), desc="indexing", unit="img") as bar:
            batch = max(runtime.settings.ingest_batch_size * 8, 256)
            for start in range(0, len(entries), batch):
                items = [UploadItem.from_path(p, m) for p, m in entries[start : start + batch]]
                for outcome in ingest_images(runtime, items, key_id="cli", progress=bar.update):
                    counts[outcome.status] += 1
    finally:
        runtime.close()
    typer.echo(", ".join(f"{n} {status}" for status, n in counts.items()))


def _curl_example(port: int, example_dir: Path | None) -> str:
    sample = None
    if example_dir is not None and example_dir.is_dir():
        sample = next(iter(sorted(example_dir.glob("*.png"))), None)
    target = sample or Path("path/to/image.png")
    return f"curl -s -F file=@{target} -F k=5 http://127.0.0.1:{port}/search"


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Bind address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    checkpoint: Annotated[Path | None, typer.Option(help="Override ACIR_CHECKPOINT.")] = None,
    example: Annotated[
        Path | None, typer.Option(help="Folder to pick a curl example from.")
    ] = None,
) -> None:
    """Run the HTTP API (migrations must already be applied: `acir db upgrade`)."""
    import uvicorn

    from app.server import create_app

    typer.secho("Search example, once the server says it is ready:", fg=typer.colors.GREEN)
    typer.echo("  " + _curl_example(port, example))
    typer.echo(f"  API docs: http://{host}:{port}/docs")
    uvicorn.run(create_app(_settings(checkpoint)), host=host, port=port, workers=1)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # FAISS logs each CPU-specific build it tries and cannot load (with a ModuleNotFoundError)
    # at INFO: noise that reads like a failure.
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)
    app()


if __name__ == "__main__":
    main()
