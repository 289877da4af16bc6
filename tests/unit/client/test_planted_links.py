"""Root never follows a link planted in the client's state directory.

The state directory belongs to the units' dynamic user, which can put
anything in it.  Root running collect, submit or forget by hand must not
delete, write or chown anything outside it through such a link: here each
link points at a directory of files (a stand-in for /etc) that must come
through untouched, whatever the commands made of the link.
"""

import json
import os
import pwd

import pytest

from pyweb_popcon.client import hostid, state
from pyweb_popcon.client.paths import STATE_DIR
from planted import precious_tree, snapshot
from transport_fixtures import client, fast, server  # noqa: F401

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="root's commands by hand: needs root")

NOBODY = pwd.getpwnam("nobody")


def plant(machine, where, target):
    """A link at the state-directory path `where` to `target`; the state
    directory belongs to nobody, as it belongs to the dynamic user."""
    state_dir = machine.path(STATE_DIR)
    link = os.path.join(state_dir, where)
    os.makedirs(os.path.dirname(link), exist_ok=True)
    os.symlink(target, link)
    for directory, dirs, names in os.walk(state_dir):
        for name in [directory] + [os.path.join(directory, n)
                                   for n in dirs + names]:
            os.lchown(name, NOBODY.pw_uid, NOBODY.pw_gid)


# (where the link is planted, relative to the state directory; what in
# the precious tree it points to)
PLANTED = {
    "history directory": ("history", ""),
    "outbox directory": ("outbox", ""),
    "history copy": ("history/20260101T000000.000000Z.json", "passwd"),
    "outbox files": ("outbox/report.asc", "report.asc"),
    "state.json": ("state.json", "state.json"),
    "host-id": ("host-id", "shadow"),
}


@pytest.mark.parametrize("planted", PLANTED)
def test_root_by_hand_leaves_what_a_link_points_to_alone(
        planted, client, server, tmp_path):  # noqa: F811
    precious = precious_tree(str(tmp_path / "etc"))
    before = snapshot(precious)
    where, target = PLANTED[planted]
    plant(client.machine, where, os.path.join(precious, target))
    if planted == "outbox files":
        os.symlink(os.path.join(precious, "report.json"),
                   client.machine.path(STATE_DIR + "/outbox/report.json"))
    client.configure(server.url())
    codes = {}
    for command in (["collect"], ["submit", "--force"], ["upload"],
                    ["forget"], ["collect"]):
        run = client.run(*command)
        codes[command[0]] = run.code
        if run.code:
            # A refusal names the link and says it is not followed.
            assert "a symbolic link, which is not followed" in run.err, (
                command, run.err)
        assert snapshot(precious) == before, (planted, command, run.err)
    # What could be done was done, in the state directory itself.
    if planted in ("history copy", "outbox files", "state.json", "host-id"):
        assert set(codes.values()) == {0}, codes
        state_dir = client.machine.path(STATE_DIR)
        for directory, _, names in os.walk(state_dir):
            for name in names:
                path = os.path.join(directory, name)
                assert not os.path.islink(path), path
                assert os.lstat(path).st_uid == NOBODY.pw_uid, path
    else:
        # A directory that is a link: nothing goes through it.
        assert codes["collect" if planted == "outbox directory"
                     else "submit"] != 0, codes


def test_a_history_entry_cannot_name_a_file_elsewhere(client, tmp_path):  # noqa: F811,E501
    precious = precious_tree(str(tmp_path / "etc"))
    st = state.State(history=[{"sent": "2026-01-01T00:00:00+00:00",
                               "receipt": "r", "file": os.path.relpath(
                                   os.path.join(precious, "shadow"),
                                   client.machine.path(state.HISTORY))}])
    state.save(client.root, st)
    os.makedirs(client.machine.path(state.HISTORY))
    run = client.run("history", "1")
    assert run.code != 0 and "shadow must survive" not in run.out
    assert "not a plain file name" in run.err


def test_host_id_link_is_replaced_not_followed(machine, tmp_path):
    precious = precious_tree(str(tmp_path / "etc"))
    before = snapshot(precious)
    plant(machine, "host-id", os.path.join(precious, "shadow"))
    made = hostid.ensure(machine.root)
    assert snapshot(precious) == before
    path = machine.path(hostid.HOST_ID)
    assert not os.path.islink(path)
    with open(path) as f:
        assert json.load(f)["host_id"] == made.host_id
