"""Hypothesis profiles: ``default`` (CI, a few minutes in all) and ``thorough`` (long sweeps).

Choose with the environment variable ``SOFTLOG_NUMERICS_PROFILE=thorough``; tests marked ``slow``
run only then, or with ``--run-slow``.
"""

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "default",
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)
settings.register_profile(
    "thorough",
    max_examples=3000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PROFILE = os.environ.get("SOFTLOG_NUMERICS_PROFILE", "default")
settings.load_profile(PROFILE)


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", help="run tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-slow") or PROFILE == "thorough":
        return
    skip = pytest.mark.skip(reason="slow: use --run-slow or SOFTLOG_NUMERICS_PROFILE=thorough")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
