"""Writing files so that a crash leaves the old file or the new, never half,
and never through a link that someone else planted.

A `Directory` is held open, and names in it are looked up relative to it
without following symbolic links: a link where a file or a directory is
expected is an error (ELOOP), never a way out of the directory.  Whoever
owns a directory (the client's units run as a dynamic user) can put links
in it; root working in it by hand must not follow them into /etc.

As root, what is written into someone else's directory is given to that
directory's owner: an administrator running a command by hand must not
leave files that the service owning the directory can no longer read or
replace.
"""

import errno
import os
import secrets
import stat

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_NOFOLLOW = os.O_NOFOLLOW


def _owned_as(fd, parent_fd):
    """As root, give the file or directory `fd` to `parent_fd`'s owner."""
    if os.geteuid() == 0:
        st = os.fstat(parent_fd)
        os.fchown(fd, st.st_uid, st.st_gid)


class Directory:
    """An open directory: names in it are never followed when links."""

    def __init__(self, fd, path):
        self.fd, self.path = fd, path

    def _plain(self, name):
        """`name`, which must be one component: never a way out of here."""
        if name in ("", ".", "..") or "/" in name:
            raise OSError(errno.EINVAL, "not a plain file name",
                          os.path.join(self.path, name))
        return name

    def _open(self, name, flags, mode=0o777):
        """os.open of `name` here, never following it; a link is an OSError
        that says so."""
        self._plain(name)
        try:
            return os.open(name, flags | _NOFOLLOW, mode, dir_fd=self.fd)
        except OSError as e:
            if e.errno in (errno.ELOOP, errno.ENOTDIR) and stat.S_ISLNK(
                    self.lstat(name).st_mode):
                raise OSError(errno.ELOOP, "a symbolic link, which is not "
                              "followed", os.path.join(self.path, name)) \
                    from None
            raise

    @classmethod
    def open(cls, path, create=False, mode=0o755):
        """The directory at `path` (its own links are followed: the caller
        names it), made with its parents first when `create` is true."""
        if create:
            make_dirs(path, mode)
        return cls(os.open(path, _DIR), path)

    def sub(self, name, create=False, mode=0o755):
        """The directory `name` in this one, made when `create` is true."""
        if create:
            try:
                os.mkdir(self._plain(name), mode, dir_fd=self.fd)
            except FileExistsError:
                pass
            else:
                fd = self._open(name, _DIR)
                try:
                    _owned_as(fd, self.fd)
                except BaseException:
                    os.close(fd)
                    raise
                return Directory(fd, os.path.join(self.path, name))
        return Directory(self._open(name, _DIR),
                         os.path.join(self.path, name))

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def names(self):
        return os.listdir(self.fd)

    def lstat(self, name):
        """os.lstat of `name` in this directory."""
        return os.stat(name, dir_fd=self.fd, follow_symlinks=False)

    def is_file(self, name):
        """True when `name` is a regular file here (a link is not)."""
        try:
            return stat.S_ISREG(self.lstat(name).st_mode)
        except FileNotFoundError:
            return False

    def read(self, name):
        """The bytes of the regular file `name`; ELOOP when it is a link."""
        fd = self._open(name, os.O_RDONLY | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as f:
            return f.read()

    def unlink(self, name, missing_ok=True):
        """Remove `name` (a link is removed, not what it points to)."""
        try:
            os.unlink(self._plain(name), dir_fd=self.fd)
        except FileNotFoundError:
            if not missing_ok:
                raise

    def write(self, name, data, mode=0o644, tmp=None, time_ns=None):
        """Write `data` to `name`: temporary file, fsync, rename, fsync.

        The temporary file is made here, or in the Directory `tmp` (which
        must be on the same file system), and renamed over whatever `name`
        was, a link included, without following it.  With `time_ns`, the
        file's access and modification times are that.
        """
        where = tmp or self
        temporary = f".tmp-{secrets.token_hex(8)}"
        fd = where._open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL
                         | os.O_CLOEXEC, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                os.fchmod(fd, mode)
                _owned_as(fd, self.fd)
                f.write(data)
                f.flush()
                if time_ns is not None:
                    os.utime(fd, ns=(time_ns, time_ns))
                os.fsync(f.fileno())
            os.rename(temporary, self._plain(name), src_dir_fd=where.fd,
                      dst_dir_fd=self.fd)
        except BaseException:
            where.unlink(temporary)
            raise
        os.fsync(self.fd)


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
            st = os.stat(os.path.dirname(new))
            os.chown(new, st.st_uid, st.st_gid, follow_symlinks=False)


def write_atomic(path, data, mode=0o644, tmp_dir=None, time_ns=None):
    """Write `data` to `path` atomically (see Directory.write); the
    directory is made if need be, the temporary file made in `tmp_dir`
    when given."""
    with Directory.open(os.path.dirname(path), create=True) as directory:
        if tmp_dir is None:
            directory.write(os.path.basename(path), data, mode,
                            time_ns=time_ns)
            return
        with Directory.open(tmp_dir, create=True) as tmp:
            directory.write(os.path.basename(path), data, mode, tmp=tmp,
                            time_ns=time_ns)
