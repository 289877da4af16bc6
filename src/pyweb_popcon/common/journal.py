"""Logging: to the journal under systemd, to stderr for a person."""

import contextlib
import logging
import os
import sys


def under_journal():
    """True when stderr is the journal stream systemd gave this service."""
    stream = os.environ.get("JOURNAL_STREAM", "")
    try:
        device, inode = (int(x) for x in stream.split(":"))
        st = os.fstat(sys.stderr.fileno())
    except (ValueError, OSError):
        return False
    return (st.st_dev, st.st_ino) == (device, inode)


@contextlib.contextmanager
def setup(identifier, verbose=False):
    """Send this program's log records where its reader will look, until
    the block ends: then the package's logger is as it was (a command run
    in-process, as the tests do, leaves no handler on a closed stream)."""
    handler = None
    if under_journal():
        try:
            from systemd.journal import JournalHandler
            handler = JournalHandler(SYSLOG_IDENTIFIER=identifier)
        except ImportError:
            pass
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(f"{identifier}: %(message)s"))
    top = logging.getLogger("pyweb_popcon")
    was = top.handlers[:], top.level, top.propagate
    top.handlers[:] = [handler]
    top.setLevel(logging.DEBUG if verbose else logging.INFO)
    top.propagate = False
    try:
        yield
    finally:
        top.handlers[:], level, top.propagate = was
        top.setLevel(level)         # not .level =: that keeps a stale cache
        handler.close()


def fields(message_id, **values):
    """The `extra` of a log call: journal MESSAGE_ID and upper-case FIELDS.

    systemd's JournalHandler sends a record's attributes as journal fields;
    the stderr handler ignores them.  Fields that are None are left out.
    """
    return {"MESSAGE_ID": message_id,
            **{k: str(v) for k, v in values.items() if v is not None}}
