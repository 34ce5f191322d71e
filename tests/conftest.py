"""Shared test configuration: hypothesis profiles and the --slow switch."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

# CI is derandomized: the same examples every run, so a failure is always reproducible.
settings.register_profile(
    "ci", derandomize=True, max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=40, deadline=None)
settings.register_profile("slow", derandomize=True, max_examples=400, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def _private_env(tmp_path_factory, variable: str, folder: str):
    """Point ``variable`` at a fresh folder for the session (tests and their subprocesses), then restore it."""
    previous = os.environ.get(variable)
    os.environ[variable] = str(tmp_path_factory.mktemp(folder))
    yield
    if previous is None:
        os.environ.pop(variable, None)
    else:
        os.environ[variable] = previous


@pytest.fixture(scope="session", autouse=True)
def _private_frame_cache(tmp_path_factory):
    """Keep the binned-frame cache out of the user's home."""
    yield from _private_env(tmp_path_factory, "DELREC_EDGE_CACHE", "frame-cache")


@pytest.fixture(scope="session", autouse=True)
def _private_build_cache(tmp_path_factory):
    """Keep the host builds of generated C out of the user's home."""
    yield from _private_env(tmp_path_factory, "DELREC_EDGE_BUILD_CACHE", "build-cache")


@pytest.fixture(scope="session")
def quantized_edge(tmp_path_factory):
    """(dataset, run): the edge preset (32 -> 64 -> conv-recurrent 64 with learned delays -> classes) trained
    for two epochs on the toy dataset and quantized to int8, shared by the deployment and firmware tests."""
    from pytrain.cli import main
    from pytrain.training.loop import TrainOptions, train
    from toy_data import make_toy_dataset

    root = tmp_path_factory.mktemp("deploy")
    data = make_toy_dataset(root / "toy")
    run = root / "run"
    train(TrainOptions(preset="edge", data=str(data), out=run, epochs=2, progress=False))
    assert main(["quantize", str(run), "--calib", "16", "--no-progress"]) == 0
    return data, run


@pytest.fixture(scope="session")
def quantized_audio_edge(tmp_path_factory):
    """(dataset, run): the edge preset trained for two epochs on a tiny dataset built from audio by the integer front
    end (:mod:`audio_data`: 4 classes of chirped bursts, 4 speakers, 0.5 s clips) and quantized to int8:
    a model that hears, shared by the listen, audio parity and audio firmware tests."""
    from pytrain.cli import main
    from pytrain.training.loop import TrainOptions, train
    from audio_data import make_audio_dataset

    root = tmp_path_factory.mktemp("hear")
    data = make_audio_dataset(root / "bursts")
    run = root / "run"
    train(TrainOptions(preset="edge", data=str(data), out=run, epochs=2, progress=False))
    assert main(["quantize", str(run), "--calib", "16", "--no-progress"]) == 0
    return data, run


def pytest_addoption(parser):
    parser.addoption("--slow", action="store_true", default=False, help="also run the long checks")


def pytest_configure(config):
    if config.getoption("--slow"):
        settings.load_profile("slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--slow"):
        return
    # Slow checks are deselected (not skipped) without --slow, so the count of tests that ran is honest.
    keep = [item for item in items if "slow" not in item.keywords]
    dropped = [item for item in items if "slow" in item.keywords]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep
