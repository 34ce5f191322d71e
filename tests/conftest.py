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


@pytest.fixture(scope="session", autouse=True)
def _private_frame_cache(tmp_path_factory):
    """Keep the binned-frame cache of every test (and its subprocesses) out of the user's home."""
    previous = os.environ.get("DELREC_EDGE_CACHE")
    os.environ["DELREC_EDGE_CACHE"] = str(tmp_path_factory.mktemp("frame-cache"))
    yield
    if previous is None:
        os.environ.pop("DELREC_EDGE_CACHE", None)
    else:
        os.environ["DELREC_EDGE_CACHE"] = previous


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
