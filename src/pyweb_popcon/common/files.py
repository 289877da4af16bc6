"""Writing files so that a crash leaves the old file or the new, never half.

As root, what is written into someone else's directory is given to that
directory's owner: an administrator running a command by hand must not
leave files that the service owning the directory (the client's units run
as a dynamic user) can no longer read or replace.
"""

import os
import tempfile


def _owner(directory):
    st = os.stat(directory)
    return st.st_uid, st.st_gid


def make_dirs(directory, mode=0o755):
    """os.makedirs, each new directory owned as its parent is (as root)."""
    missing = []
    while not os.path.isdir(directory):
        missing.append(directory)
        directory = os.path.dirname(directory)
    for new in reversed(missing):
        try:
            os.mkdir(new, mode)
        except FileExistsError:
            continue
        if os.geteuid() == 0:
            os.chown(new, *_owner(os.path.dirname(new)))


def write_atomic(path, data, mode=0o644):
    """Write `data` to `path`: temporary file, fsync, rename, fsync dir."""
    directory = os.path.dirname(path)
    make_dirs(directory)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        os.fchmod(fd, mode)
        if os.geteuid() == 0:
            os.fchown(fd, *_owner(directory))
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
