"""Images for the lessons."""

from __future__ import annotations

import torch
from matplotlib import cbook
from PIL import Image
from torchvision.transforms.functional import center_crop, pil_to_tensor, resize

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def sample_image(size: int = 224) -> torch.Tensor:
    """A real photograph that ships with matplotlib (Grace Hopper), no download needed.

    Returns a 3 x size x size float tensor with values in [0, 1].
    """
    with cbook.get_sample_data("grace_hopper.jpg") as file:
        image = pil_to_tensor(Image.open(file).convert("RGB"))
    image = center_crop(resize(image, size, antialias=True), size)
    return image.float() / 255


def normalize(images: torch.Tensor, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> torch.Tensor:
    """Per-channel standardization of ... x 3 x H x W images in [0, 1]."""
    mean = torch.tensor(mean, device=images.device).view(3, 1, 1)
    std = torch.tensor(std, device=images.device).view(3, 1, 1)
    return (images - mean) / std
