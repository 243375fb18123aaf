"""A batch loader that keeps a whole split on the training device and augments batch-wise.

Instead of decoding, cropping and converting one image at a time in worker processes
(``torch.utils.data.DataLoader`` with per-image transforms), the split stays one uint8
tensor; each batch is gathered, cropped, flipped and normalized with a few tensor
operations. ``seresnet benchmark`` compares the two.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from ..validate import check_int
from .data import ImageSplit

_PAD = 4  # random crops are taken from the image padded by 4 pixels on each side


class BatchLoader:
    """Yields (images N x 3 x 32 x 32 float, labels N int64) batches on ``device``.

    ``shuffle``: a new order every epoch. ``augment``: random 32 x 32 crop of the image
    zero-padded by 4 pixels and a horizontal flip with probability 1/2, drawn per image.
    ``mean``/``std``: per-channel normalization after scaling to [0, 1] (None: [0, 1] only,
    like ``ToTensor``). Every image appears exactly once per epoch; a last batch of a
    single image is merged into the one before (batch norm cannot train on one value).
    The order and augmentations come from ``generator``, whose state a checkpoint saves;
    ``restart()`` takes it back to ``seed``.

    ``shard=(rank, world_size)``: for training in several processes (``distributed.py``).
    Every process draws the same order and augmentations; of each batch of ``batch_size``
    images it yields only its own share (the shares differ by one image at most), so the
    processes together see every image once per epoch, and a last batch too small to give
    each process two images is merged into the one before.
    """

    def __init__(self, split: ImageSplit, batch_size: int, *, shuffle: bool = False, augment: bool = False,
                 mean=None, std=None, device: str | torch.device = "cpu", seed: int = 0,
                 shard: tuple[int, int] = (0, 1)):
        check_int("batch_size", batch_size)
        rank, world = shard
        check_int("world_size", world)
        if not (isinstance(rank, int) and 0 <= rank < world):
            raise ValueError(f"shard=(rank, world_size) needs 0 <= rank < world_size, got {shard!r}")
        if world > 1 and batch_size < 2 * world:
            raise ValueError(f"batch_size={batch_size} cannot give each of {world} processes two images; "
                             f"allowed: batch_size >= {2 * world}")
        if world > 1 and shuffle and len(split.labels) < 2 * world:  # a training split: every process must step
            raise ValueError(f"{len(split.labels)} training images cannot give each of {world} processes two; "
                             f"allowed: at least {2 * world}")
        self.shard = (rank, world)
        self.device = torch.device(device)
        images = split.images.to(self.device)
        # Augmenting loaders keep the split padded once (uint8), so a crop is a strided copy.
        self.images = torch.nn.functional.pad(images, (_PAD,) * 4) if augment else images
        self.labels = split.labels.to(self.device)
        self.batch_size, self.shuffle, self.augment = batch_size, shuffle, augment
        # x / 255 then (x - mean) / std, folded into one shift and one scale of the uint8 values
        mean = torch.zeros(3) if mean is None else torch.tensor(mean)
        std = torch.ones(3) if std is None else torch.tensor(std)
        self.shift = (255 * mean).view(1, 3, 1, 1).to(self.device)
        self.scale = (1 / (255 * std)).view(1, 3, 1, 1).to(self.device)
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)

    def restart(self) -> None:
        """Draw the epochs' orders and augmentations from the start again, as a new loader would."""
        self.generator.manual_seed(self.seed)

    def __len__(self) -> int:
        return len(self.batch_bounds())

    def batch_bounds(self) -> list[tuple[int, int]]:
        """(start, end) positions of each (whole, all processes') batch in an epoch's order."""
        n, b = len(self.labels), self.batch_size
        bounds = [(start, min(start + b, n)) for start in range(0, n, b)]
        if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < 2 * self.shard[1]:
            bounds[-2:] = [(bounds[-2][0], n)]
        return bounds

    def share(self, start: int, end: int) -> tuple[int, int]:
        """The positions of batch [start, end) that this process takes."""
        rank, world = self.shard
        size = end - start
        return start + size * rank // world, start + size * (rank + 1) // world

    def loss_weights(self) -> list[float]:
        """For each batch, what this process's gradient is multiplied by (``Steps`` scales the
        gradient reaching the logits) so that DDP's average of the processes' gradients is the
        gradient of the whole batch's mean loss: own share x processes / batch (1 in a single process)."""
        weights = []
        for first, stop in self.batch_bounds():
            start, end = self.share(first, stop)
            weights.append((end - start) * self.shard[1] / (stop - first))
        return weights

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        # The whole epoch's order and augmentations are drawn at once, on the CPU generator
        # (so a run is the same on any device), and sent to the device in one copy each.
        n = len(self.labels)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        order = order.to(self.device)
        crops = flips = None
        if self.augment:
            crops = torch.randint(0, 2 * _PAD + 1, (n, 2), generator=self.generator).to(self.device)
            flips = (torch.rand(n, generator=self.generator) < 0.5).to(self.device)
        for bounds in self.batch_bounds():
            start, end = self.share(*bounds)
            if start == end:  # an evaluation batch smaller than the number of processes
                continue
            indices = order[start:end]
            if self.augment:
                batch = self.prepare(indices, crops[start:end], flips[start:end])
            else:
                batch = self.prepare(indices)
            yield batch, self.labels[indices]

    def prepare(self, indices: torch.Tensor, crops: torch.Tensor | None = None,
                flips: torch.Tensor | None = None) -> torch.Tensor:
        """The images at ``indices`` as a normalized float N x 3 x 32 x 32 batch.

        With ``crops`` (N x 2 top-left offsets into the padded images) each image is cut
        out at its offset and flipped left to right where ``flips`` is True.
        """
        if crops is None:
            images = self.images[indices]
        else:
            images = crop_padded(self.images, crops, indices)
            images = torch.where(flips.view(-1, 1, 1, 1), images.flip(3), images)
        return (images.float() - self.shift) * self.scale


def visible_shift(offset: tuple[int, int], flip: bool) -> tuple[int, int]:
    """How far a crop at ``offset`` (top, left) into the padded image moves the picture (down, right).

    A flipped crop shows the mirrored picture, moved the opposite way horizontally. Either way
    the zero padding shows as a black strip on the side the picture moved away from.
    """
    top, left = offset
    down, right = _PAD - top, _PAD - left
    return down, -right if flip else right


def crop_padded(padded: torch.Tensor, offsets: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """Cut B images of H x W out of N x C x (H + 2*_PAD) x (W + 2*_PAD) padded ones.

    ``indices`` (B) picks the images, ``offsets`` (B x 2) the (top, left) corner of each
    cut: one strided copy, no loop over images. Returns B x C x H x W.
    """
    h, w = padded.shape[2] - 2 * _PAD, padded.shape[3] - 2 * _PAD
    windows = padded.unfold(2, h, 1).unfold(3, w, 1)  # N x C x (2*_PAD+1) x (2*_PAD+1) x h x w, a view
    return windows[indices, :, offsets[:, 0], offsets[:, 1]]
