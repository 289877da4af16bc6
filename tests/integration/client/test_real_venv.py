"""A venv made with python3 -m venv, a real framework wheel from PyPI."""

import json
import os
import subprocess
import time

import pytest

from cli_run import run_cli

WHEELS = "/var/cache/pyweb-popcon-tests/wheels"
BOTTLE = "bottle==0.12.25"


def wheel_cache():
    """Bottle's wheel, downloaded once into a cache outside the checkout."""
    os.makedirs(WHEELS, exist_ok=True)
    if not any(n.startswith("bottle-0.12.25") for n in os.listdir(WHEELS)):
        subprocess.run(["/usr/bin/python3", "-m", "pip", "download",
                        "--no-deps", "--only-binary=:all:", "--retries", "5",
                        "-d", WHEELS, BOTTLE], check=True,
                       capture_output=True)
    return WHEELS


@pytest.fixture(scope="module")
def venv_machine(tmp_path_factory):
    from fakemachine import FakeMachine
    m = FakeMachine(tmp_path_factory.mktemp("real") / "root")
    venv = m.path("/srv/app/venv")
    subprocess.run(["/usr/bin/python3", "-m", "venv", venv], check=True)
    subprocess.run([f"{venv}/bin/pip", "install", "--no-index",
                    "--find-links", wheel_cache(), BOTTLE], check=True,
                   capture_output=True)
    return m, venv


def test_pip_installed_wheel_is_found_and_vote_follows_import(venv_machine):
    m, venv = venv_machine
    run = run_cli(["show", "--root", m.top])
    assert run.code == 0, run.stderr
    found = json.loads(run.stdout)["frameworks"]
    # The Python it runs under, as the venv's own interpreter says.
    python = subprocess.run(
        [f"{venv}/bin/python", "-c",
         "import sys; print('%d.%d' % sys.version_info[:2])"],
        check=True, capture_output=True, text=True).stdout.strip()
    assert found == [{"name": "bottle", "version": "0.12.25", "via": "venv",
                      "python": python, "envs": 1, "used": False}]

    time.sleep(0.05)        # past the kernel's coarse timestamp tick
    subprocess.run([f"{venv}/bin/python", "-c", "import bottle"], check=True)
    run = run_cli(["show", "--root", m.top])
    assert json.loads(run.stdout)["frameworks"][0]["used"] is True
