"""Yes, but no server configured yet: said plainly, and not a failure.

Until a distribution builds the package with its server's key and URL,
KEY_FINGERPRINTS is empty.  A machine whose administrator said yes then
collects and sends nothing, and says which settings are missing and where
they go; collect, upload and submit exit 6 (NOTCONFIGURED), which the
units list in SuccessExitStatus=.
"""

import os

import pytest

from cli_run import run_cli
from fakemachine import CONSENT, build_machine

DROPIN = "/etc/pyweb-popcon.conf.d/server.conf"


@pytest.mark.parametrize("command", [["collect"], ["upload"], ["submit"],
                                     ["submit", "--dry-run"]])
def test_participating_without_a_server(machine, command):
    build_machine(machine)
    machine.config('PARTICIPATE="yes"\n' + CONSENT)
    run = run_cli(["--root", machine.top, *command])
    assert run.code == 6, run.stderr
    assert "participating, but no server is configured: KEY_FINGERPRINTS " \
        "is empty" in run.stderr
    assert f"KEY_FINGERPRINTS in a drop-in such as {DROPIN}" in run.stderr
    assert run.stdout == ""
    assert run.socket_events == []
    assert not os.path.exists(machine.path("/var/lib/pyweb-popcon/outbox")) \
        or os.listdir(machine.path("/var/lib/pyweb-popcon/outbox")) == []


def test_status_says_what_is_missing(machine):
    machine.config('PARTICIPATE="yes"\n' + CONSENT)
    run = run_cli(["status", "--root", machine.top])
    assert run.code == 0
    assert run.stdout.splitlines()[1] == (
        "Server: not configured (KEY_FINGERPRINTS is empty, so there is no "
        "key to encrypt reports to; set SUBMIT_URL, KEYRING and "
        f"KEY_FINGERPRINTS in a drop-in such as {DROPIN} (see "
        "pyweb-popcon.conf(5)))")


def test_status_names_the_configured_server(machine):
    fpr = "A" * 40
    machine.config('PARTICIPATE="no"\n')
    dropin = machine.config('SUBMIT_URL="https://popcon.example.org/submit"\n'
                            f'KEY_FINGERPRINTS="{fpr}"\n', name="server.conf")
    run = run_cli(["status", "--root", machine.top])
    assert run.stdout.splitlines()[1] == (
        f"Server: https://popcon.example.org/submit, keys {fpr} "
        f"({dropin}:2)")


def test_status_names_the_dns_zone_when_reports_go_over_dns(machine):
    fpr = "A" * 40
    machine.config('PARTICIPATE="no"\nTRANSPORT="dns"\n'
                   'SUBMIT_ZONE="d.popcon.example.org"\n'
                   f'KEY_FINGERPRINTS="{fpr}"\n')
    run = run_cli(["status", "--root", machine.top])
    assert run.stdout.splitlines()[1].startswith(
        f"Server: the DNS zone d.popcon.example.org, keys {fpr} ")


def test_not_participating_is_still_quiet(machine):
    run = run_cli(["--root", machine.top, "collect"])
    assert run.code == 0
    assert "no server" not in run.stderr
