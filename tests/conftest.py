import logging
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile

import pytest
from hypothesis import settings as hypothesis_settings
from hypothesis.configuration import set_hypothesis_home_dir

sys.path.insert(0, os.path.dirname(__file__))
# Hypothesis keeps caches in .hypothesis/ of the working directory: not in
# the checkout.
set_hypothesis_home_dir(os.path.join(tempfile.gettempdir(),
                                     "pyweb-popcon-hypothesis"))

from fakemachine import FakeMachine  # noqa: E402
from booted import RELEASE  # noqa: E402

# No time limit per example: a timed assertion in a test fails a loaded
# machine, not slow code (speed is for tests/bench).
hypothesis_settings.register_profile("untimed", deadline=None)
hypothesis_settings.load_profile("untimed")
from gpgkeys import make_keys, stop_agents  # noqa: E402


def pytest_addoption(parser):
    parser.addoption(
        "--start-method", choices=multiprocessing.get_all_start_methods(),
        help="multiprocessing's start method for this run (make check: "
        "forkserver, as Python 3.14's default)")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "all_releases: in make test-all only (the other "
        "releases' long runs); make test deselects it")
    method = config.getoption("start_method")
    if method:
        multiprocessing.set_start_method(method, force=True)


def _loggers():
    """{name: (handlers, level, propagate)} of the root logger and the
    package's loggers not in their initial state; pytest's own handlers,
    one set per test phase, left out."""
    loggers = {"": logging.getLogger()}
    loggers.update((name, logger) for name, logger in
                   logging.Logger.manager.loggerDict.items()
                   if name.split(".")[0] == "pyweb_popcon"
                   and isinstance(logger, logging.Logger))
    state = {}
    for name, logger in loggers.items():
        handlers = [h for h in logger.handlers
                    if not type(h).__module__.startswith("_pytest.")]
        if name == "" or handlers or logger.level or not logger.propagate:
            state[name] = (handlers, logger.level, logger.propagate)
    return state


@pytest.fixture(autouse=True)
def logging_left_as_found():
    """A test (or the code it runs in-process) that leaves a handler, a
    level or propagate changed fails: the next test would log through it,
    to a stream that may be closed."""
    before = _loggers()
    yield
    after = _loggers()
    assert after == before, f"logging left changed: {before} -> {after}"


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
    in PYWEB_POPCON_DEBS): a directory of .deb, .changes and .buildinfo.
    On this host, or in the tree of another PYWEB_POPCON_RELEASE."""
    given = os.environ.get("PYWEB_POPCON_DEBS")
    if given:
        yield given
        return
    if RELEASE != "bookworm":
        # Built where the release's users get them from: in its tree; the
        # unit tests there are test_release_build's.
        from releases import release_build
        out = tempfile.mkdtemp(prefix="pyweb-popcon-debs.", dir="/var/tmp")
        release_build(RELEASE, out, unit_tests=False)
        yield out
        shutil.rmtree(out, ignore_errors=True)
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
