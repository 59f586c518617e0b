"""Encoding latency of the ACIR network on this CPU.

Prints parameters, MACs (from torch's FLOP counter, MAC = FLOP / 2) and median / p95
milliseconds per image of an inference-mode forward pass; optionally the time of one
training step (forward + backward + AdamW) with the SCH loss.

    .venv/bin/python -m bench.encode_latency --preset compact paper --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from models.config import PRESET_NAMES, preset
from models.loss import class_weights, sch_total_loss
from models.network import ACIRNet, count_parameters

NUM_CLASSES = 16
HEAVY_PRESETS = {"paper": 5}  # cap on timed repeats for slow presets


def _macs(net: ACIRNet, x: torch.Tensor) -> float:
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        net(x)
    return counter.get_total_flops() / 2.0


def _time_forward(net: ACIRNet, x: torch.Tensor, repeats: int, warmup: int) -> list[float]:
    times: list[float] = []
    with torch.inference_mode():
        for index in range(warmup + repeats):
            start = time.perf_counter()
            net(x)
            if index >= warmup:
                times.append((time.perf_counter() - start) * 1e3 / x.shape[0])
    return times


def _time_train_step(net: ACIRNet, batch: int, repeats: int) -> float:
    size = net.config.image_size
    images = torch.rand(batch, net.config.in_channels, size, size)
    labels = torch.arange(batch) % NUM_CLASSES
    prints = torch.rand(batch, net.config.fingerprint_size**2)
    weights = class_weights(labels, NUM_CLASSES)
    optimiser = torch.optim.AdamW(net.parameters(), lr=3e-4)
    net.train()
    times: list[float] = []
    for _ in range(repeats + 1):  # first step warms up allocators
        start = time.perf_counter()
        loss, _parts = sch_total_loss(net(images), labels, prints, weights)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(name: str, args: argparse.Namespace) -> None:
    torch.manual_seed(0)
    config = preset(name, bits=args.bits)
    net = ACIRNet(config, NUM_CLASSES).eval()
    batch = 1 if name in HEAVY_PRESETS else args.batch
    repeats = min(args.repeats, HEAVY_PRESETS.get(name, args.repeats))
    x = torch.rand(batch, config.in_channels, config.image_size, config.image_size)
    macs = _macs(net, x[:1])
    times = _time_forward(net, x, repeats, warmup=2 if name in HEAVY_PRESETS else 10)
    params = count_parameters(net) / 1e6
    print(
        f"{name:8s} {config.image_size}px bits={config.bits} params={params:.3f}M"
        f" GMAC/img={macs / 1e9:.3f} threads={args.threads} batch={batch} repeats={repeats}"
        f" median={statistics.median(times):.2f} ms/img p95={_percentile(times, 0.95):.2f} ms/img"
    )
    if args.train_batch and name not in HEAVY_PRESETS:
        step = _time_train_step(net, args.train_batch, repeats=3)
        print(
            f"{name:8s} train step (fwd+bwd+AdamW, SCH loss) batch={args.train_batch}: {step:.3f} s"
        )


def run_checkpoint(path: str, args: argparse.Namespace) -> None:
    """End to end as the service encodes: preprocessing + network + OOD scores, one raw image."""
    import numpy as np

    from models.checkpoint import load_checkpoint
    from models.encoder import ImageEncoder

    encoder = ImageEncoder(load_checkpoint(Path(path)), threads=args.threads)  # as the service
    image = np.random.default_rng(0).integers(0, 255, size=(64, 64), dtype=np.uint8)
    times = []
    for index in range(10 + args.repeats):
        start = time.perf_counter()
        encoder.encode([image])
        if index >= 10:
            times.append((time.perf_counter() - start) * 1e3)
    print(
        f"checkpoint {Path(path).name} (preprocess + network + OOD '{encoder.ood_detector}')"
        f" threads={args.threads} batch=1 repeats={args.repeats}"
        f" median={statistics.median(times):.2f} ms p95={_percentile(times, 0.95):.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", nargs="+", default=["compact", "paper"], choices=PRESET_NAMES)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--bits", type=int, default=64)
    parser.add_argument("--train-batch", type=int, default=0, help="also time a training step")
    parser.add_argument("--checkpoint", help="also time the full encoder of this checkpoint")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for name in args.preset:
        run(name, args)
    if args.checkpoint:
        run_checkpoint(args.checkpoint, args)


if __name__ == "__main__":
    main()
