"""TrainConfig refuses bad parameters, naming the parameter and what is allowed."""

import pytest
import torch

from seresnet_lib.config import TrainConfig

# (parameters, the message's key part): each is also run through the notebook in test_training_notebook.py
BAD_PARAMETERS = [
    (dict(dataset="imagenet"), "dataset='imagenet' is not allowed; choose one of 'synthetic', 'cifar10'"),
    (dict(model="vgg16"), "model='vgg16' is not allowed; choose one of 'seresnet50', 'resnet50'"),
    (dict(stem="tiny"), "stem='tiny' is not allowed; choose one of 'imagenet', 'cifar'"),
    (dict(device="tpu"), "device='tpu' is not allowed; choose one of 'auto', 'cpu', 'cuda'"),
    (dict(epochs=0), "epochs must be >= 1, got 0"),
    (dict(epochs="ten"), "epochs must be an integer, got 'ten' (str)"),
    (dict(batch_size=0), "batch_size must be >= 2, got 0"),
    (dict(lr=0), "lr must be > 0, got 0"),
    (dict(lr=-0.1), "lr must be > 0, got -0.1"),
    (dict(momentum=1.0), "momentum must be in [0, 1), got 1.0"),
    (dict(momentum=-0.5), "momentum must be in [0, 1), got -0.5"),
    (dict(weight_decay=-1e-4), "weight_decay must be >= 0, got -0.0001"),
    (dict(train_size=100, batch_size=128), "train_size=100 is smaller than batch_size=128"),
    (dict(reduction=0), "reduction must be between 1 and 256, got 0"),
]


@pytest.mark.parametrize("parameters, message", BAD_PARAMETERS, ids=[m.split(" ")[0] for _, m in BAD_PARAMETERS])
def test_bad_parameter_is_named(parameters, message):
    with pytest.raises(ValueError) as error:
        TrainConfig(**parameters)
    assert message in str(error.value)


@pytest.mark.parametrize(
    "parameters, message",
    [
        (dict(lr="1e-2"), "lr must be a number > 0, got '1e-2' (str)"),
        (dict(nesterov="yes"), "nesterov must be True or False, got 'yes' (str)"),
        (dict(nesterov=True, momentum=0.0), "nesterov=True needs momentum > 0"),
        (dict(lr_gamma=0), "lr_gamma must be in (0, 1], got 0"),
        (dict(schedule="linear"), "schedule='linear' is not allowed; choose one of 'step', 'cosine'"),
        (dict(test_size=0), "test_size must be >= 1, got 0"),
        (dict(epochs=True), "epochs must be an integer, got True (bool)"),
        (dict(out_dir=""), "out_dir must be a non-empty string"),
        (dict(batch_size=1), "batch_size must be >= 2: batch norm cannot train on a single image"),
        (dict(reduction=512), "reduction must be between 1 and 256, got 512"),
        (dict(seed=2**32), "seed must be between 0 and 4294967295, got 4294967296"),
    ],
)
def test_more_bad_parameters(parameters, message):
    with pytest.raises(ValueError) as error:
        TrainConfig(**parameters)
    assert message in str(error.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_refused():
    with pytest.raises(ValueError, match="device='cuda' but no CUDA GPU is available here; use device='auto' or 'cpu'"):
        TrainConfig(device="cuda")


def test_from_namespace_takes_the_parameters_and_refuses_unknown_names():
    namespace = {"epochs": 3, "lr": 0.1, "torch": torch, "In": [], "_": None, "plt": object()}
    config = TrainConfig.from_namespace(namespace)
    assert (config.epochs, config.lr, config.batch_size) == (3, 0.1, 128)
    with pytest.raises(ValueError, match="unknown parameter\\(s\\): epoch; the parameters are: dataset, model"):
        TrainConfig.from_namespace({**namespace, "epoch": 3})


def test_defaults_are_the_article_recipe_on_offline_data():
    config = TrainConfig()
    recipe = (config.epochs, config.batch_size, config.lr, config.momentum, config.weight_decay)
    assert recipe == (12, 128, 0.01, 0.9, 5e-4)
    assert config.nesterov and (config.schedule, config.lr_step, config.lr_gamma) == ("step", 5, 0.1)
    assert not config.augment and not config.normalize and config.stem == "imagenet"
    assert config.torch_device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert "batch_size = 128" in config.describe()
