import os
import shutil
import subprocess
import sys
import tempfile

import pytest
from hypothesis.configuration import set_hypothesis_home_dir

sys.path.insert(0, os.path.dirname(__file__))
# Hypothesis keeps caches in .hypothesis/ of the working directory: not in
# the checkout.
set_hypothesis_home_dir(os.path.join(tempfile.gettempdir(),
                                     "pyweb-popcon-hypothesis"))

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


@pytest.fixture(scope="session")
def debs():
    """The Debian packages built from this tree, once per run (or the ones
    in PYWEB_POPCON_DEBS): a directory of .deb, .changes and .buildinfo."""
    given = os.environ.get("PYWEB_POPCON_DEBS")
    if given:
        yield given
        return
    if not shutil.which("dpkg-buildpackage", path="/usr/bin"):
        pytest.skip("dpkg-buildpackage is not installed (make deps installs "
                    "it)")
    out = tempfile.mkdtemp(prefix="pyweb-popcon-debs.", dir="/var/tmp")
    build = os.path.join(os.path.dirname(__file__), "package", "build-deb")
    subprocess.run([build, out + ".build", out], check=True,
                   stdin=subprocess.DEVNULL, capture_output=True, timeout=900)
    yield out
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(out + ".build", ignore_errors=True)
