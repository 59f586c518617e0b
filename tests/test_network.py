"""Shape, switch, determinism and config tests for the ACIR network (tiny preset)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from models.attention import WindowAttention2d
from models.config import ModelConfig, preset
from models.decoder import ReconstructionDecoder
from models.network import ACIRNet, ACIROutput, binary_codes, count_parameters

torch.set_num_threads(1)

SWITCHES = (
    "shallow_attention",
    "deep_attention",
    "darf_fusion",
    "pit_multilayer",
    "use_pit",
    "kan_head",
)


def _net(config: ModelConfig, classes: int = 5, seed: int = 0) -> ACIRNet:
    torch.manual_seed(seed)
    return ACIRNet(config, classes)


def _check_shapes(out: ACIROutput, config: ModelConfig, batch: int, classes: int) -> None:
    assert out.u.shape == (batch, config.bits)
    assert out.logits.shape == (batch, classes)
    assert out.feature.shape == (batch, config.feature_dim)
    assert out.deep.shape == (batch, config.c4, config.x4_size, config.x4_size)
    assert out.shallow is not None
    assert out.shallow.shape == (batch, config.c2, config.x2_size, config.x2_size)


def test_tiny_output_shapes_and_decoder_range() -> None:
    config = preset("tiny", bits=16)
    net = _net(config).eval()
    with torch.inference_mode():
        out = net(torch.rand(3, 3, 32, 32))
        image = ReconstructionDecoder(config).eval()(out.deep)
    _check_shapes(out, config, 3, 5)
    assert image.shape == (3, 3, 32, 32)
    assert float(image.min()) >= 0.0 and float(image.max()) <= 1.0


def test_compact_output_shapes() -> None:
    config = preset("compact")
    assert (config.x2_size, config.x4_size) == (16, 4)
    net = _net(config, classes=7).eval()
    with torch.inference_mode():
        out = net(torch.rand(2, 3, 64, 64))
    _check_shapes(out, config, 2, 7)


def test_paper_config_matches_method_table() -> None:
    config = preset("paper")
    assert (config.image_size, config.x2_size, config.x4_size) == (224, 28, 7)
    assert (config.c2, config.c4, config.feature_dim) == (512, 2048, 3584)
    with torch.device("meta"):  # count parameters without allocating 600 MB
        params = count_parameters(ACIRNet(config, 16))
    assert 150e6 <= params <= 160e6


@pytest.mark.parametrize("flags", list(itertools.product([False, True], repeat=len(SWITCHES))))
def test_every_switch_combination_runs(flags: tuple[bool, ...]) -> None:
    config = preset("tiny", bits=8, **dict(zip(SWITCHES, flags, strict=True)))
    with torch.inference_mode():
        out = _net(config).eval()(torch.rand(2, 3, 32, 32))
    _check_shapes(out, config, 2, 5)
    assert torch.isfinite(out.u).all()


def test_eval_mode_is_deterministic_and_init_is_seeded() -> None:
    config = preset("tiny")
    first, second = _net(config, seed=3), _net(config, seed=3)
    for (name, a), (_, b) in zip(
        first.state_dict().items(), second.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    key = "head.layer1.base_weight"
    assert not torch.equal(_net(config, seed=4).state_dict()[key], first.state_dict()[key])
    x = torch.rand(2, 3, 32, 32)
    first.eval()
    with torch.inference_mode():
        a, b = first(x), first(x)
    assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True))


def test_wrong_input_size_is_rejected() -> None:
    with pytest.raises(ValueError, match="expected"):
        _net(preset("tiny"))(torch.rand(1, 3, 30, 30))


def test_binary_codes_maps_zero_to_true() -> None:
    u = torch.tensor([[-0.5, 0.0, 0.2, -0.0]])
    assert binary_codes(u).tolist() == [[False, True, True, True]]


def _naive_window_attention(block: WindowAttention2d, x: torch.Tensor) -> torch.Tensor:
    """Reference: loop over windows, attend over the valid positions only."""
    heads, dim, win = block.heads, block.head_dim, block.window
    q, k, v = block.qkv(x)[0].view(3, heads, dim, *x.shape[2:])
    out = torch.zeros(heads, dim, *x.shape[2:])
    for top, left in itertools.product(range(0, x.shape[2], win), range(0, x.shape[3], win)):
        rows, cols = slice(top, top + win), slice(left, left + win)
        qs, ks, vs = (t[:, :, rows, cols] for t in (q, k, v))
        pos = [(r, c) for r in range(qs.shape[2]) for c in range(qs.shape[3])]
        side = 2 * win - 1
        index = torch.tensor(
            [[(a[0] - b[0] + win - 1) * side + a[1] - b[1] + win - 1 for b in pos] for a in pos]
        )
        logits = torch.einsum("hdn,hdm->hnm", qs.flatten(2), ks.flatten(2)) / math.sqrt(dim)
        attn = (logits + block.bias_table[:, index]).softmax(-1)
        res = torch.einsum("hnm,hdm->hdn", attn, vs.flatten(2))
        out[:, :, rows, cols] = res.view(heads, dim, *qs.shape[2:])
    return x + block.proj(out.reshape(1, heads * dim, *x.shape[2:]))


@pytest.mark.parametrize("size", [6, 7])  # 7 needs padding with 3×3 windows
def test_window_attention_matches_naive_reference(size: int) -> None:
    torch.manual_seed(0)
    block = WindowAttention2d(channels=6, heads=2, head_dim=4, window=3)
    x = torch.randn(1, 6, size, size)
    with torch.no_grad():
        assert torch.allclose(block(x), _naive_window_attention(block, x), atol=1e-5)


def test_config_dict_round_trip_and_validation() -> None:
    config = preset("compact", bits=32, kan_head=False)
    data = config.to_dict()
    assert isinstance(data["layers"], list)
    assert ModelConfig.from_dict(data) == config
    with pytest.raises(ValueError, match="unknown ModelConfig keys"):
        ModelConfig.from_dict({**data, "depth": 3})
    for bits in (0, 12, -8):
        with pytest.raises(ValueError, match="multiple of 8"):
            preset("tiny", bits=bits)
    with pytest.raises(ValueError, match="paper, compact, tiny"):
        preset("huge")


def test_fusion_modes_and_legacy_switch() -> None:
    for fusion in ("darf", "concat", "deep"):
        config = preset("tiny", bits=16, fusion=fusion)
        net = _net(config).eval()
        with torch.inference_mode():
            out = net(torch.rand(2, 3, 32, 32))
        _check_shapes(out, config, 2, 5)
        # deep-only fusion reads no shallow map, so it has no shallow attention block to train
        has_shallow_attention = isinstance(net.shallow_attn, WindowAttention2d)
        assert has_shallow_attention == (fusion != "deep")
    # configurations stored before `fusion` existed keep what their boolean switch built
    legacy = preset("tiny").to_dict()
    legacy.pop("fusion")
    assert ModelConfig.from_dict({**legacy, "darf_fusion": True}).fusion == "darf"
    assert ModelConfig.from_dict({**legacy, "darf_fusion": False}).fusion == "concat"
    with pytest.raises(ValueError, match="fusion"):
        preset("tiny", fusion="sum")


def test_deep_only_fusion_ignores_the_shallow_map() -> None:
    net = _net(preset("tiny", bits=16, fusion="deep")).eval()
    deep = torch.rand(2, net.config.c4, 2, 2)
    a = net.fusion(torch.rand(2, net.config.c2, 8, 8), deep)
    b = net.fusion(torch.zeros(2, net.config.c2, 8, 8), deep)
    assert torch.equal(a, b)
