"""TrainConfig refuses bad parameters, naming the parameter and what is allowed."""

import json
from pathlib import Path

import pytest
import torch
import yaml

from seresnet_lib import ResNetConfig
from seresnet_lib.parameters import parse_value
from seresnet_lib.training import build_model
from seresnet_lib.training.config import TrainConfig
from seresnet_lib.training.run import differences

# (parameters, the message's key part); test_training_notebook.py runs one through the notebook
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
    (dict(reduction=0), "reduction must be >= 1, got 0"),
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
        (dict(reduction=512), "reduction=512 is larger than the 256 channels of the narrowest SE module"),
        (dict(seed=2**32), "seed must be between 0 and 4294967295, got 4294967296"),
        (dict(zero_init_residual="no"), "zero_init_residual must be True or False, got 'no' (str)"),
        (dict(channels_last=1), "channels_last must be True or False, got 1 (int)"),
        (dict(resume=""), "resume must be True, False, or the run to continue (\"run-001\" or a path), got ''"),
        (dict(resume=1), "resume must be True, False, or the run to continue"),
        (dict(se_position="middle"), "se_position='middle' is not allowed; choose one of 'standard', 'pre', "
                                     "'post', 'identity'"),
        (dict(se_stages=[5]), "se_stages must name one or more of the stages 1, 2, 3, 4"),
        (dict(keep_checkpoints=-1), "keep_checkpoints must be an integer >= 0 (this run's own checkpoint counts; 0 "
                                    "writes none), or None to keep every run's; got -1"),
        (dict(keep_checkpoints=True), "keep_checkpoints must be an integer >= 0"),
        (dict(keep_checkpoints="all"), "or None to keep every run's; got 'all'"),
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


def test_outside_a_notebook_every_plain_global_must_be_a_parameter():
    namespace = {"epochs": 3, "lr": 0.1, "torch": torch, "_": None, "plt": object()}
    config = TrainConfig.from_namespace(namespace)
    assert (config.epochs, config.lr, config.batch_size) == (3, 0.1, 128)
    with pytest.raises(ValueError, match="unknown parameter\\(s\\): epoch; the parameters are: dataset, model"):
        TrainConfig.from_namespace({**namespace, "epoch": 3})


PARAMETERS_CELL = 'dataset = "synthetic"\nepochs = 3\nlr = 0.1'
CONFIG_CELL = "config = TrainConfig.from_namespace(globals())"


def notebook(*cells, **values):
    """A notebook's globals after running ``cells`` (IPython keeps their sources in ``In``)."""
    return {"In": ["", "import torch", *cells], "torch": torch, "dataset": "synthetic", "epochs": 3, "lr": 0.1,
            **values}


def test_a_misspelt_papermill_parameter_is_refused_by_name():
    injected = "# Parameters\nepoch = 12\n"
    namespace = notebook(PARAMETERS_CELL, injected, CONFIG_CELL, epoch=12)
    with pytest.raises(ValueError, match=r"unknown parameter\(s\): epoch; the parameters are"):
        TrainConfig.from_namespace(namespace)


def test_parameters_for_longer_runs_come_from_papermill_though_the_cell_leaves_them_out():
    injected = "# Parameters\ntorch_compile = True\nkeep_checkpoints = None\n"
    namespace = notebook(PARAMETERS_CELL, injected, CONFIG_CELL, torch_compile=True, keep_checkpoints=None)
    config = TrainConfig.from_namespace(namespace)
    assert config.torch_compile is True and config.keep_checkpoints is None and config.epochs == 3
    assert not TrainConfig.from_namespace(notebook(PARAMETERS_CELL, CONFIG_CELL)).torch_compile  # the default


@pytest.mark.parametrize("name", ["_lr", "learning_rate"])
def test_any_name_papermill_injects_must_be_a_parameter(name):
    namespace = notebook(PARAMETERS_CELL, f"# Parameters\n{name} = 0.5\n", CONFIG_CELL, **{name: 0.5})
    with pytest.raises(ValueError, match=f"unknown parameter\\(s\\): {name};"):
        TrainConfig.from_namespace(namespace)


def test_rerunning_the_parameters_and_config_cells_after_the_lesson_works():
    lesson = ["train_set = load_dataset()", "classes = train_set.classes", "answer = None", "best = 0.75"]
    namespace = notebook(PARAMETERS_CELL, CONFIG_CELL, *lesson, PARAMETERS_CELL.replace("3", "5"), CONFIG_CELL,
                         classes=("a", "b"), answer=None, best=0.75)
    namespace["epochs"] = 5
    assert TrainConfig.from_namespace(namespace).epochs == 5
    only_config = notebook(PARAMETERS_CELL, CONFIG_CELL, *lesson, CONFIG_CELL, classes=("a", "b"))
    assert TrainConfig.from_namespace(only_config).epochs == 3


def test_a_name_typed_into_the_parameters_cell_on_a_rerun_is_refused():
    edited = PARAMETERS_CELL + "\nbatch = 32"
    namespace = notebook(PARAMETERS_CELL, CONFIG_CELL, "classes = ()", edited, CONFIG_CELL, classes=(), batch=32)
    with pytest.raises(ValueError, match=r"unknown parameter\(s\): batch;"):
        TrainConfig.from_namespace(namespace)


def test_once_the_parameters_cell_is_fixed_a_stale_misspelt_global_does_not_count():
    typo = PARAMETERS_CELL + "\nbatch = 32"
    fixed = PARAMETERS_CELL + "\nbatch_size = 32"
    namespace = notebook(typo, CONFIG_CELL, fixed, CONFIG_CELL, batch=32, batch_size=32)
    assert TrainConfig.from_namespace(namespace).batch_size == 32


def test_rerunning_the_config_cell_after_a_refusal_refuses_again():
    typo = PARAMETERS_CELL + "\nepoch = 8"
    namespace = notebook(typo, CONFIG_CELL, CONFIG_CELL, "classes = ()", CONFIG_CELL, epoch=8, classes=())
    with pytest.raises(ValueError, match=r"unknown parameter\(s\): epoch;"):
        TrainConfig.from_namespace(namespace)


def test_only_variables_count_as_assigned_and_cell_magics_are_read():
    settings = PARAMETERS_CELL + "\ntorch.backends.cudnn.benchmark = True\noptions = {}\noptions['x'] = 1"
    namespace = notebook(settings, CONFIG_CELL, options={"x": 1})
    with pytest.raises(ValueError, match=r"unknown parameter\(s\): options;"):  # not torch
        TrainConfig.from_namespace(namespace)
    timed = "get_ipython().run_cell_magic('time', '', 'epochs = 3\\nepoch = 5\\n')"  # %%time over the cell
    with pytest.raises(ValueError, match=r"unknown parameter\(s\): epoch;"):
        TrainConfig.from_namespace(notebook(timed, CONFIG_CELL, epoch=5))


def test_overwriting_ipythons_cell_history_is_refused():
    with pytest.raises(ValueError, match="In is IPython's list of the cells run so far, not a parameter"):
        TrainConfig.from_namespace({"In": 3, "epochs": 3})


def test_defaults_are_the_article_recipe_on_offline_data():
    config = TrainConfig()
    recipe = (config.epochs, config.batch_size, config.lr, config.momentum, config.weight_decay)
    assert recipe == (12, 128, 0.01, 0.9, 5e-4)
    assert config.nesterov and (config.schedule, config.lr_step, config.lr_gamma) == ("step", 5, 0.1)
    assert not config.augment and not config.normalize and config.stem == "imagenet"
    assert not config.zero_init_residual  # the article's initialization
    assert config.torch_device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert "batch_size = 128" in config.describe()


PRESETS = sorted(path for path in (Path(__file__).resolve().parents[1] / "notebooks" / "params").glob("*.yaml")
                 if not path.name.startswith(("06_", "sweep_")))  # lesson 05's; test_experiments checks the rest


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.name)
def test_each_preset_sets_every_parameter_to_a_valid_value(path):
    """papermill overrides only what a preset names: a parameter left out keeps the lesson's small default."""
    preset = yaml.safe_load(path.read_text())
    assert set(preset) == set(TrainConfig().as_dict())
    TrainConfig(**{**preset, "device": "cpu"})


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.name)
def test_a_preset_keeps_every_runs_checkpoint(path):
    """A long run sharing out_dir with a short one must not lose its checkpoint to it."""
    assert yaml.safe_load(path.read_text())["keep_checkpoints"] is None


def test_the_article_preset_is_the_articles_recipe():
    preset = yaml.safe_load((PRESETS[0].parent / "article_recipe.yaml").read_text())
    assert {k: preset[k] for k in ("dataset", "stem", "epochs", "batch_size", "lr", "momentum", "weight_decay",
                                   "nesterov", "schedule", "lr_step", "lr_gamma", "augment", "normalize",
                                   "zero_init_residual", "train_size")} == dict(
        dataset="cifar10", stem="imagenet", epochs=12, batch_size=128, lr=0.01, momentum=0.9, weight_decay=5e-4,
        nesterov=True, schedule="step", lr_step=5, lr_gamma=0.1, augment=False, normalize=False,
        zero_init_residual=False, train_size=None)


@pytest.mark.parametrize("text, written", [("1e-3", "1.0e-3"), ("5E-4", "5.0e-4"), ("1e3", "1.0e+3"),
                                           ("1.5e3", "1.5e+3")])
def test_a_number_yaml_read_as_text_gets_a_hint_that_yaml_reads_as_a_number(text, written):
    assert yaml.safe_load(f"lr: {text}") == {"lr": text}  # PyYAML follows YAML 1.1
    with pytest.raises(ValueError) as error:
        TrainConfig(lr=text)
    message = str(error.value)
    assert f"lr must be a number > 0, got '{text}' (str); YAML (papermill's -f and -y) reads {text} as text: " \
           f"write {written} or {float(text)!r}" in message
    assert TrainConfig(**yaml.safe_load(f"lr: {written}")).lr == float(text)  # the advice works


def test_a_number_in_quotes_gets_a_hint():
    with pytest.raises(ValueError, match=r"got '0.01' \(str\); a number in quotes is text: write 0.01 without "
                                         r"quotes \(with papermill, -p rather than -r\)"):
        TrainConfig(lr="0.01")


def test_resume_takes_a_run_name_or_a_path_and_refuses_true_or_false_as_text():
    assert TrainConfig(resume=Path("runs/x/run-002")).resume == "runs/x/run-002"
    with pytest.raises(ValueError, match="resume='False' is text, not True or False: write it without quotes"):
        TrainConfig(resume="False")


def test_se_variants_reach_the_model_and_a_yaml_list_of_stages_resumes_the_same_run(tmp_path):
    config = TrainConfig(se_stages=[4], se_position="identity", out_dir=str(tmp_path))
    assert config.se_stages == (4,)
    model = build_model(config, num_classes=10)
    assert (model.config.se_stages, model.config.se_position) == ((4,), "identity")
    saved = json.loads(json.dumps(config.as_dict()))  # as metrics.json holds the run's parameters
    assert saved["se_stages"] == [4] and not differences(saved, config)
    assert differences({**saved, "se_stages": [3, 4]}, config) == {"se_stages": ([3, 4], (4,))}


def test_parameters_the_chosen_options_ignore_are_marked_in_the_description():
    config = TrainConfig(schedule="cosine", model="resnet50", dataset="cifar10", lr_step=3)
    assert config.unused() == {"lr_step": "schedule='cosine'", "lr_gamma": "schedule='cosine'",
                               "reduction": "model='resnet50'", "se_stages": "model='resnet50'",
                               "se_position": "model='resnet50'"}
    lines = dict(line.split(" = ", 1) for line in (row.strip() for row in config.describe().splitlines()))
    assert lines["lr_step"] == "3  (unused with schedule='cosine')"
    assert lines["reduction"] == "16  (unused with model='resnet50')"
    assert lines["lr"] == "0.01" and lines["data_dir"] == "'data'"
    assert set(TrainConfig().unused()) == {"data_dir", "download"}  # the offline stand-in is generated


def test_ipythons_output_history_is_not_a_parameter():
    namespace = notebook(PARAMETERS_CELL, "# Parameters\nOut = 3\n", CONFIG_CELL, Out=3)
    with pytest.raises(ValueError, match=r"unknown parameter\(s\): Out;"):
        TrainConfig.from_namespace(namespace)


@pytest.mark.parametrize("text, value", [
    ("3", 3), ("0.01", 0.01), ("1e-3", 0.001), ("True", True), ("true", True), ("None", None), ("null", None),
    ("cifar10", "cifar10"), ("'cifar10'", "cifar10"), ("run-001", "run-001"), ("[4]", [4]), ("(1, 2)", (1, 2)),
    ("[a, b]", ["a", "b"]), ("1+2+3+4", "1+2+3+4"), ("runs/05_train_cifar10", "runs/05_train_cifar10"),
])
def test_one_parser_reads_every_parameter_written_as_text(text, value):
    """-p on every command line, a parameters cell's defaults, results.csv: one reading of a value."""
    assert parse_value(text) == value and type(parse_value(text)) is type(value)


def test_the_network_fields_are_the_models_own():
    """TrainConfig's network fields take ResNetConfig's defaults, and network() is the model's config."""
    config, network = TrainConfig(), ResNetConfig()
    for name in ("stem", "se_stages", "se_position", "zero_init_residual"):
        assert getattr(config, name) == getattr(network, name)
    assert config.network(10) == ResNetConfig(num_classes=10, reduction=16)
    assert TrainConfig(model="resnet50").network(10).reduction is None  # ResNet-50: no SE
    with pytest.raises(ValueError, match="se_stages must name one or more of the stages"):
        TrainConfig(se_stages=(5,))
