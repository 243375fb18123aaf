"""Runs made by the tests (notebook 05 under nbval, say) go to a temporary folder, not the project's runs/."""

import os
import shutil
import tempfile


def pytest_configure(config):
    config.seresnet_workdir = tempfile.mkdtemp(prefix="seresnet-tests-")
    os.environ["SERESNET_WORKDIR"] = config.seresnet_workdir  # inherited by the notebook kernels


def pytest_unconfigure(config):
    shutil.rmtree(config.seresnet_workdir, ignore_errors=True)
