"""A batch loader that keeps a whole split on the training device and augments batch-wise.

Instead of decoding, cropping and converting one image at a time in worker processes
(``torch.utils.data.DataLoader`` with per-image transforms), the split stays one uint8
tensor; each batch is gathered, cropped, flipped and normalized with a few tensor
operations. ``python -m seresnet_lib.benchmark`` compares the two.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from .data import ImageSplit
from .validate import check_positive_int

PAD = 4  # random crops are taken from the image padded by 4 pixels on each side


class BatchLoader:
    """Yields (images N x 3 x 32 x 32 float, labels N int64) batches on ``device``.

    ``shuffle``: a new order every epoch. ``augment``: random 32 x 32 crop of the image
    zero-padded by 4 pixels and a horizontal flip with probability 1/2, drawn per image.
    ``mean``/``std``: per-channel normalization after scaling to [0, 1] (None: [0, 1] only,
    like ``ToTensor``). Every image appears exactly once per epoch; a last batch of a
    single image is merged into the one before (batch norm cannot train on one value).
    The order and augmentations come from ``generator``, whose state a checkpoint saves.
    """

    def __init__(self, split: ImageSplit, batch_size: int, *, shuffle: bool = False, augment: bool = False,
                 mean=None, std=None, device: str | torch.device = "cpu", seed: int = 0):
        check_positive_int("batch_size", batch_size)
        self.device = torch.device(device)
        images = split.images.to(self.device)
        # Augmenting loaders keep the split padded once (uint8), so a crop is a strided copy.
        self.images = torch.nn.functional.pad(images, (PAD,) * 4) if augment else images
        self.labels = split.labels.to(self.device)
        self.batch_size, self.shuffle, self.augment = batch_size, shuffle, augment
        # x / 255 then (x - mean) / std, folded into one shift and one scale of the uint8 values
        mean = torch.zeros(3) if mean is None else torch.tensor(mean)
        std = torch.ones(3) if std is None else torch.tensor(std)
        self.shift = (255 * mean).view(1, 3, 1, 1).to(self.device)
        self.scale = (1 / (255 * std)).view(1, 3, 1, 1).to(self.device)
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        n, b = len(self.labels), self.batch_size
        batches = -(-n // b)
        return batches - 1 if batches > 1 and n % b == 1 else batches

    def batch_indices(self) -> list[torch.Tensor]:
        """One epoch's batches of image indices."""
        n = len(self.labels)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        batches = list(order.split(self.batch_size))
        if len(batches) > 1 and len(batches[-1]) == 1:
            batches[-2:] = [torch.cat(batches[-2:])]
        return batches

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for indices in self.batch_indices():
            crops = flips = None
            if self.augment:  # drawn on the CPU generator, so a run is the same on any device
                crops = torch.randint(0, 2 * PAD + 1, (len(indices), 2), generator=self.generator)
                flips = torch.rand(len(indices), generator=self.generator) < 0.5
            indices = indices.to(self.device)
            yield self.prepare(indices, crops, flips), self.labels[indices]

    def prepare(self, indices: torch.Tensor, crops: torch.Tensor | None = None,
                flips: torch.Tensor | None = None) -> torch.Tensor:
        """The images at ``indices`` as a normalized float N x 3 x 32 x 32 batch.

        With ``crops`` (N x 2 top-left offsets into the padded images) each image is cut
        out at its offset and flipped left to right where ``flips`` is True.
        """
        if crops is None:
            images = self.images[indices]
        else:
            images = crop_padded(self.images, crops.to(self.device), indices)
            flips = flips.to(self.device)
            images[flips] = images[flips].flip(3)
        return (images.float() - self.shift) * self.scale


def crop_padded(padded: torch.Tensor, offsets: torch.Tensor, indices: torch.Tensor | None = None) -> torch.Tensor:
    """Cut H x W images out of N x C x (H + 2*PAD) x (W + 2*PAD) padded ones, each at its (top, left) offset.

    ``indices`` picks which padded images (default: all, in order); one strided copy, no per-image loop.
    """
    h, w = padded.shape[2] - 2 * PAD, padded.shape[3] - 2 * PAD
    windows = padded.unfold(2, h, 1).unfold(3, w, 1)  # N x C x (2*PAD+1) x (2*PAD+1) x h x w, a view
    if indices is None:
        indices = torch.arange(len(padded), device=padded.device)
    return windows[indices, :, offsets[:, 0], offsets[:, 1]]
