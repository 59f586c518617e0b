"""`acir train` stages on a small BrainAtlas2D build and the tiny preset."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import app
from models.checkpoint import load_checkpoint

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _train(data: Path, out: Path, stage: str) -> None:
    args = ["train", "--data", str(data), "--out", str(out), "--preset", "tiny", "--bits", "16"]
    args += ["--epochs", "1", "--decoder-epochs", "1", "--threads", "1", "--stage", stage]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output


def test_stage_1_stops_before_the_decoder_and_stage_2_adds_it(
    small_atlas: Path, tmp_path: Path
) -> None:
    out = tmp_path / "tiny.pt"
    _train(small_atlas, out, "1")
    first = load_checkpoint(out)
    assert first.decoder is None and first.projection is not None
    _train(small_atlas, out, "2")
    assert load_checkpoint(out).decoder is not None
