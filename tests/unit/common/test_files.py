"""Atomic writes, and root's files in a service's directory."""

import os
import pwd
import stat

import pytest

from pyweb_popcon.common import files


def test_write_atomic_replaces_whole_files(tmp_path):
    path = tmp_path / "a" / "b" / "state.json"
    files.write_atomic(str(path), b"one", mode=0o600)
    files.write_atomic(str(path), b"two", mode=0o600)
    assert path.read_bytes() == b"two"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.listdir(path.parent) == ["state.json"]     # no temporary left


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_root_writes_into_a_service_directory_as_its_owner(tmp_path):
    nobody = pwd.getpwnam("nobody")
    state = tmp_path / "state"
    state.mkdir()
    os.chown(state, nobody.pw_uid, nobody.pw_gid)
    files.write_atomic(str(state / "outbox" / "report.asc"), b"x",
                       mode=0o600)
    for path in (state / "outbox", state / "outbox" / "report.asc"):
        st = path.stat()
        assert (st.st_uid, st.st_gid) == (nobody.pw_uid, nobody.pw_gid)
