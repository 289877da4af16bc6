import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from fakemachine import FakeMachine  # noqa: E402
from gpgkeys import make_keys, stop_agents  # noqa: E402


@pytest.fixture
def machine(tmp_path):
    return FakeMachine(tmp_path / "root")


@pytest.fixture(scope="session")
def gpg_keys(tmp_path_factory):
    """A throw-away server key: .public (file), .fingerprint, .home (secret),
    .decrypt(armored)."""
    keys = make_keys(str(tmp_path_factory.mktemp("gpg")))
    yield keys
    stop_agents([keys])
