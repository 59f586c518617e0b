"""`acir train` stages on a small BrainAtlas2D build and the tiny preset."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import app
from models.checkpoint import load_checkpoint

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def atlas(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from models.data.brain_atlas import build_brain_atlas
    from models.data.sources import MRICRON_TEMPLATES

    if not (MRICRON_TEMPLATES / "aal.nii.gz").is_file():
        pytest.skip("mricron-data not installed")
    out = tmp_path_factory.mktemp("atlas")
    build_brain_atlas(out, counts={"train": 40, "db": 10, "val": 30, "query": 20}, progress=False)
    return out


def _train(atlas: Path, out: Path, stage: str) -> None:
    args = ["train", "--data", str(atlas), "--out", str(out), "--preset", "tiny", "--bits", "16"]
    args += ["--epochs", "1", "--decoder-epochs", "1", "--threads", "1", "--stage", stage]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output


def test_stage_1_stops_before_the_decoder_and_stage_2_adds_it(atlas: Path, tmp_path: Path) -> None:
    out = tmp_path / "tiny.pt"
    _train(atlas, out, "1")
    first = load_checkpoint(out)
    assert first.decoder is None and first.projection is not None
    _train(atlas, out, "2")
    assert load_checkpoint(out).decoder is not None
