"""The batch loader: every image once per epoch, labels stay with their images, correct crops and flips."""

import pytest
import torch

from seresnet_lib.training.data import ImageSplit, synthetic_cifar
from seresnet_lib.training.loader import BatchLoader, crop_padded, visible_shift


def numbered_split(n):
    """Image i is filled with the value i + 1 (so a padded crop shows 0s and i + 1s only); its label is i."""
    images = (torch.arange(n, dtype=torch.uint8) + 1).view(n, 1, 1, 1).expand(n, 3, 32, 32).contiguous()
    return ImageSplit(images, torch.arange(n), tuple(str(i) for i in range(n)))


@pytest.mark.parametrize("augment", [False, True])
def test_every_image_once_per_epoch_with_its_label(augment):
    loader = BatchLoader(numbered_split(200), batch_size=32, shuffle=True, augment=augment, seed=0)
    for _ in range(2):
        seen = []
        for images, labels in loader:
            assert images.shape[1:] == (3, 32, 32) and images.dtype == torch.float32
            assert 0 <= images.min() and images.max() <= 1
            values = (images.amax((1, 2, 3)) * 255).round().long()
            assert torch.equal(values, labels + 1)  # the label came with its own image
            seen.append(labels)
        assert sorted(torch.cat(seen).tolist()) == list(range(200))


def test_order_changes_every_epoch_and_follows_the_seed():
    def two_epochs(seed):
        loader = BatchLoader(numbered_split(100), batch_size=100, shuffle=True, seed=seed)
        return [labels for _ in range(2) for _, labels in loader]

    first, second = two_epochs(0)
    assert not torch.equal(first, second)
    assert all(torch.equal(a, b) for a, b in zip(two_epochs(0), [first, second], strict=True))
    assert not torch.equal(two_epochs(1)[0], first)


def test_without_shuffle_the_order_is_kept():
    labels = torch.cat([batch for _, batch in BatchLoader(numbered_split(50), batch_size=16)])
    assert labels.tolist() == list(range(50))


def test_a_last_batch_of_one_joins_the_previous_batch():
    loader = BatchLoader(numbered_split(65), batch_size=32)
    assert len(loader) == 2
    assert [len(labels) for _, labels in loader] == [32, 33]
    assert len(BatchLoader(numbered_split(66), batch_size=32)) == 3


@pytest.mark.parametrize("n", [1, 2, 3, 31, 32, 33, 64, 65, 100])
@pytest.mark.parametrize("batch_size", [1, 2, 32, 200])
def test_length_is_the_number_of_batches_yielded(n, batch_size):
    loader = BatchLoader(numbered_split(n), batch_size=batch_size, shuffle=True, augment=True)
    sizes = [len(labels) for _, labels in loader]
    assert len(loader) == len(sizes) and sum(sizes) == n
    assert batch_size == 1 or n == 1 or min(sizes) >= 2  # no batch of one for batch norm to choke on


def test_crop_offsets_shift_the_image_inside_its_padding():
    images = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    padded = torch.nn.functional.pad(images, (4, 4, 4, 4))
    crops = crop_padded(padded, torch.tensor([[4, 4], [0, 0], [8, 2]]), torch.arange(3))
    assert crops.shape == (3, 3, 32, 32)
    assert torch.equal(crops[0], images[0])  # offset (4, 4) is the original
    assert torch.equal(crops[1], padded[1, :, 0:32, 0:32])
    assert torch.equal(crops[2], padded[2, :, 8:40, 2:34])
    assert (crops[1, :, :4, :] == 0).all() and (crops[1, :, :, :4] == 0).all()


def test_flip_mirrors_left_to_right_and_the_centre_crop_is_the_image():
    split = synthetic_cifar(2, seed=0)
    loader = BatchLoader(split, batch_size=2, augment=True)
    out = loader.prepare(torch.arange(2), torch.full((2, 2), 4), torch.tensor([True, False]))
    expected = split.images.float() / 255
    torch.testing.assert_close(out[0], expected[0].flip(2))
    torch.testing.assert_close(out[1], expected[1])


def test_augmentation_varies_per_image():
    split = synthetic_cifar(64, seed=0)
    plain = next(iter(BatchLoader(split, 64)))[0]
    augmented = next(iter(BatchLoader(split, 64, augment=True, seed=0)))[0]
    changed = (plain != augmented).flatten(1).any(1)
    assert 0.5 < changed.float().mean() < 1.0  # 1 in 18 images keeps offset (4, 4) and no flip


def test_normalization_standardizes_each_channel():
    split = synthetic_cifar(500, seed=0)
    mean, std = split.channel_stats()
    images = torch.cat([batch for batch, _ in BatchLoader(split, 128, mean=mean, std=std)])
    assert images.mean((0, 2, 3)) == pytest.approx(torch.zeros(3), abs=1e-4)
    assert images.std((0, 2, 3)) == pytest.approx(torch.ones(3), abs=1e-3)


def test_bad_batch_size_is_refused():
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        BatchLoader(numbered_split(4), batch_size=0)


def test_the_visible_shift_says_where_the_picture_moved_and_where_the_black_strip_is():
    """The shift lesson 05 prints under each augmented image: the picture moves (down, right), and the
    zero padding shows on the side it moved away from, for every crop, flipped or not."""
    offsets = torch.cartesian_prod(torch.arange(9), torch.arange(9))
    for flip in (False, True):
        loader = BatchLoader(numbered_split(len(offsets)), len(offsets), augment=True)
        images = loader.prepare(torch.arange(len(offsets)), offsets, torch.full((len(offsets),), flip))
        for offset, image in zip(offsets.tolist(), images):
            down, right = visible_shift(offset, flip)
            black_rows = (image[0].amax(1) == 0).nonzero().flatten().tolist()
            black_columns = (image[0].amax(0) == 0).nonzero().flatten().tolist()
            assert black_rows == (list(range(down)) if down >= 0 else list(range(32 + down, 32)))
            assert black_columns == (list(range(right)) if right >= 0 else list(range(32 + right, 32)))
    assert visible_shift((1, 7), flip=False) == (3, -3) and visible_shift((1, 7), flip=True) == (3, 3)


@pytest.mark.parametrize("n, batch_size, world", [(96, 16, 2), (102, 32, 3), (37, 500, 2)])
def test_the_shares_of_the_processes_make_up_each_batch_in_its_order(n, batch_size, world):
    """Every process draws the same order and augmentations and takes its own contiguous share."""
    options = dict(shuffle=True, augment=True, seed=5)
    whole = list(BatchLoader(numbered_split(n), batch_size, **options))
    shards = [list(BatchLoader(numbered_split(n), batch_size, **options, shard=(rank, world)))
              for rank in range(world)]
    assert all(len(shard) == len(whole) for shard in shards)
    for index, (images, labels) in enumerate(whole):
        assert torch.equal(torch.cat([shard[index][0] for shard in shards]), images)
        assert torch.equal(torch.cat([shard[index][1] for shard in shards]), labels)
        sizes = [len(shard[index][1]) for shard in shards]
        assert min(sizes) >= 2 and max(sizes) - min(sizes) <= 1  # two images each at least, for batch norm


def test_a_last_batch_too_small_to_share_joins_the_one_before():
    """70 = 2 x 32 + 6: six images give three processes two each; 4 + 32 would not, so they join."""
    assert BatchLoader(numbered_split(70), 32, shard=(0, 3)).batch_bounds()[-1] == (64, 70)
    assert BatchLoader(numbered_split(68), 32, shard=(0, 3)).batch_bounds() == [(0, 32), (32, 68)]


def test_loss_weights_make_the_average_over_processes_the_mean_over_the_batch():
    """Shares of 18 and 19 images of a batch of 37: their mean losses count 36/37 and 38/37."""
    weights = [BatchLoader(numbered_split(37), 64, shard=(rank, 2)).loss_weights() for rank in (0, 1)]
    assert weights == [[36 / 37], [38 / 37]]
    assert BatchLoader(numbered_split(37), 16).loss_weights() == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("shard, message", [((2, 2), "0 <= rank < world_size"), ((0, 0), "world_size"),
                                            ((-1, 2), "0 <= rank < world_size")])
def test_a_shard_outside_the_processes_is_refused(shard, message):
    with pytest.raises(ValueError, match=message):
        BatchLoader(numbered_split(8), 4, shard=shard)


def test_a_batch_too_small_for_two_images_per_process_is_refused():
    with pytest.raises(ValueError, match="batch_size=4 cannot give each of 3 processes two images"):
        BatchLoader(numbered_split(8), 4, shard=(0, 3))


def test_a_training_split_too_small_for_two_images_per_process_is_refused():
    with pytest.raises(ValueError, match="5 training images cannot give each of 3 processes two"):
        BatchLoader(numbered_split(5), 8, shuffle=True, shard=(0, 3))
