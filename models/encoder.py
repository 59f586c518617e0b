"""Raw images in; hash bits, re-ranking features and OOD scores out (indexing and serving)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from models.checkpoint import ACIRCheckpoint
from models.network import binary_codes
from models.ood import detector_scores, forward_with_squeeze, needs_squeeze
from models.preprocess import to_model_batch


@dataclass
class EncodedBatch:
    bits: np.ndarray  # bool [N, n_bits]
    features: np.ndarray  # float32 [N, d], projected and L2-normalised
    ood_scores: np.ndarray  # float32 [N], higher = more out of distribution
    # wall time of each step in ms: "preprocess", "network", "ood"; "network" includes the
    # squeezed copies when the OOD detector reads them (they share the batched call)
    timings_ms: dict[str, float] = field(default_factory=dict)


class ImageEncoder:
    """Wraps a checkpoint for inference; create once and share (forward passes are read-only)."""

    def __init__(self, ckpt: ACIRCheckpoint, threads: int | None = None) -> None:
        if threads is not None:
            torch.set_num_threads(threads)
            # numpy's BLAS (the OOD scoring's small products) would start threads of its own
            # that spin beside torch's: measured, that doubles the network time at 2 torch
            # threads on 2 cores. One BLAS thread costs those small products nothing.
            self._blas_limit = threadpool_limits(limits=1, user_api="blas")
        self.ckpt = ckpt
        self.ckpt.network.eval()
        if self.ckpt.decoder is not None:
            self.ckpt.decoder.eval()

    @property
    def bits(self) -> int:
        return self.ckpt.bits

    @property
    def feature_dim(self) -> int:
        return self.ckpt.projection.output_dim

    @property
    def ood_threshold(self) -> float:
        return float(self.ckpt.ood.threshold)

    @property
    def ood_detector(self) -> str:
        return self.ckpt.ood.detector

    def encode(self, images: Sequence[np.ndarray]) -> EncodedBatch:
        """Encode decoded images (2-D grayscale or H×W×C arrays of any dtype)."""
        if len(images) == 0:
            raise ValueError("encode needs at least one image")
        marks = [time.perf_counter()]
        batch = to_model_batch(list(images), self.ckpt.preprocess)
        marks.append(time.perf_counter())
        with torch.inference_mode():
            ood = self.ckpt.ood
            out, squeeze = forward_with_squeeze(self.ckpt.network, batch, needs_squeeze(ood))
            bits = binary_codes(out.u).numpy()
            features = self.ckpt.projection.apply(out.feature.numpy())
            marks.append(time.perf_counter())
            scores = detector_scores(ood, batch, out, self.ckpt.decoder, squeeze=squeeze)
            marks.append(time.perf_counter())
        steps = ("preprocess", "network", "ood")
        return EncodedBatch(
            bits=bits.astype(bool),
            features=features,
            ood_scores=np.asarray(scores, dtype=np.float32),
            timings_ms={
                s: (b - a) * 1e3 for s, a, b in zip(steps, marks[:-1], marks[1:], strict=True)
            },
        )
