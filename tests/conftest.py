import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from fakemachine import FakeMachine  # noqa: E402


@pytest.fixture
def machine(tmp_path):
    return FakeMachine(tmp_path / "root")
