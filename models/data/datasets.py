"""Torch dataset of labelled patches: preprocessed image, its fingerprint and the label."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, get_worker_info

from models.data.augment import AugmentSettings, augment_gray
from models.fingerprint import fingerprints
from models.preprocess import PreprocessSpec, to_model_gray


class PatchDataset(Dataset[tuple[Tensor, Tensor, Tensor]]):
    """Items ``(image [C, S, S] in [0, 1], fingerprint [s*s], label int64)``.

    Images go through :func:`models.preprocess.to_model_gray` (the serving preprocessing), then,
    with ``augment``, through :func:`augment_gray`. Fingerprints are taken from the augmented
    image, as the SCH loss compares what the network actually sees.
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        spec: PreprocessSpec,
        augment: bool,
        fingerprint_size: int = 16,
        seed: int = 0,
        settings: AugmentSettings | None = None,
    ) -> None:
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images = images
        self.labels = torch.as_tensor(np.asarray(labels, dtype=np.int64).reshape(-1))
        self.spec = spec
        self.augment = augment
        self.fingerprint_size = fingerprint_size
        self.seed = seed
        self.settings = settings or AugmentSettings()
        self._generator = torch.Generator().manual_seed(seed)
        self._worker_seed: int | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def generator_state(self) -> Tensor:
        """State of the in-process augmentation generator (kept with a resumable run)."""
        return self._generator.get_state()

    def set_generator_state(self, state: Tensor) -> None:
        self._generator.set_state(state)

    def _rng(self) -> torch.Generator:
        # DataLoader workers get distinct, loader-seeded seeds; reseed once per worker and epoch.
        info = get_worker_info()
        if info is not None and info.seed != self._worker_seed:
            self._worker_seed = info.seed
            self._generator = torch.Generator().manual_seed((info.seed + self.seed) % 2**63)
        return self._generator

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor, Tensor]:
        gray = torch.from_numpy(to_model_gray(self.images[index], self.spec))
        if self.augment:
            gray = augment_gray(gray, self._rng(), self.settings)
        image = gray.unsqueeze(0).expand(self.spec.channels, -1, -1).contiguous()
        fingerprint = fingerprints(image.unsqueeze(0), self.fingerprint_size)[0]
        return image, fingerprint, self.labels[index]
