"""Atomic writes, links never followed, and root's files in a service's
directory."""

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


def test_write_atomic_through_a_temporary_directory(tmp_path):
    """The temporary file is made in tmp_dir and renamed into place: the
    target directory never holds half a file."""
    files.write_atomic(str(tmp_path / "incoming" / "a"), b"data", mode=0o640,
                       tmp_dir=str(tmp_path / "tmp"))
    assert (tmp_path / "incoming" / "a").read_bytes() == b"data"
    assert stat.S_IMODE((tmp_path / "incoming" / "a").stat().st_mode) == 0o640
    assert os.listdir(tmp_path / "tmp") == []


def test_a_link_is_replaced_not_written_through(tmp_path):
    outside = tmp_path / "outside"
    outside.write_bytes(b"precious")
    (tmp_path / "dir").mkdir()
    os.symlink(outside, tmp_path / "dir" / "file")
    files.write_atomic(str(tmp_path / "dir" / "file"), b"new")
    assert outside.read_bytes() == b"precious"
    assert not os.path.islink(tmp_path / "dir" / "file")
    assert (tmp_path / "dir" / "file").read_bytes() == b"new"


def test_links_in_a_directory_are_never_followed(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "file").write_bytes(b"precious")
    (tmp_path / "top").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / "top" / "sub")
    os.symlink(tmp_path / "elsewhere" / "file", tmp_path / "top" / "file")
    with files.Directory.open(str(tmp_path / "top")) as top:
        for attempt in (lambda: top.sub("sub"),
                        lambda: top.sub("sub", create=True),
                        lambda: top.read("file")):
            with pytest.raises(OSError, match="a symbolic link, which is "
                                              "not followed"):
                attempt()
        for name in ("../elsewhere/file", "..", ""):
            with pytest.raises(OSError, match="not a plain file name"):
                top.read(name)
        top.unlink("file")                  # the link, not its target
    assert (tmp_path / "elsewhere" / "file").read_bytes() == b"precious"
