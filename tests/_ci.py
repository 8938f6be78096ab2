"""Optional dependencies in tests: outside CI a test whose dependency is missing skips with the
reason and the install line; under CI (CI=true, as CI services set it) it fails, so that a test
the project relies on can never pass CI by not running.

    if not found:
        missing_dependency("chromium missing; as root run `make browser`")
"""
from __future__ import annotations

import os
from typing import NoReturn

import pytest

# The values CI services give CI; .ci/install_browser.sh reads it the same way.
CI_VALUES = ("true", "1", "yes")


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in CI_VALUES


def missing_dependency(reason: str) -> NoReturn:
    """Fail under CI, skip otherwise; `reason` says what is missing and how to install it."""
    if under_ci():
        pytest.fail(f"CI={os.environ['CI']} requires this test to run, but {reason}", pytrace=False)
    pytest.skip(reason)
