"""The host ID: made once, private, renewed when the machine is cloned."""

import json
import os
import stat

import pytest

from pyweb_popcon.client import hostid
from pyweb_popcon.client.hostid import HostID, HostIDError


def test_read_before_first_collect_says_why(machine):
    with pytest.raises(HostIDError, match="no host ID yet"):
        hostid.read(machine.root)
    assert not os.path.exists(machine.path(hostid.STATE_DIR))


def test_ensure_makes_a_private_id_once(machine):
    made = hostid.ensure(machine.root)
    path = machine.path(hostid.HOST_ID)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert hostid.ensure(machine.root) == made == hostid.read(machine.root)
    with open(path) as f:
        stored = f.read()
    assert "0123456789abcdef" not in stored    # the machine ID is hashed


def test_cloned_machine_gets_a_new_id(machine):
    first = hostid.ensure(machine.root)
    machine.file("/etc/machine-id", "fedcba9876543210fedcba9876543210\n")
    with pytest.raises(HostIDError, match="machine-id changed"):
        hostid.read(machine.root)
    second = hostid.ensure(machine.root)
    assert second.host_id != first.host_id
    assert hostid.read(machine.root) == second


def test_damaged_file_is_replaced(machine):
    machine.file(hostid.HOST_ID, "{not json")
    with pytest.raises(HostIDError, match="damaged"):
        hostid.read(machine.root)
    assert hostid.ensure(machine.root).host_id


@pytest.mark.parametrize("days,bucket", [
    (0, "1"), (6.9, "1"), (7, "2-4"), (27.9, "2-4"), (28, "5-24"),
    (167.9, "5-24"), (168, "25+"), (2000, "25+")])
def test_age_buckets(days, bucket):
    host = HostID("2b0c1f5e-8d7a-4f4e-9b7e-3f0a9c1d2e4f", 1_000_000.0, "")
    assert host.age(now=1_000_000.0 + days * 86400) == bucket


def test_file_format_is_plain_json(machine):
    made = hostid.ensure(machine.root)
    with open(machine.path(hostid.HOST_ID)) as f:
        assert json.load(f)["host_id"] == made.host_id
