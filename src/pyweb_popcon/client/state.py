"""What the client keeps between runs, under /var/lib/pyweb-popcon.

- outbox/report.asc: the encrypted report waiting to be sent, and beside it
  outbox/report.json, its plain text, kept so that what is sent can be
  copied into the history by upload, which cannot read the system;
- state.json: the last attempt and its result, the last success and its
  receipt, and the index of the history;
- history/: a copy of each report actually sent, the last HISTORY_KEEP.

Everything is written atomically and readable by its owner only.
"""

import contextlib
import datetime
import fcntl
import json
import logging
import os
from dataclasses import asdict, dataclass, field

from pyweb_popcon.common import files
from pyweb_popcon.client.paths import STATE_DIR

OUTBOX = STATE_DIR + "/outbox"
STATE = STATE_DIR + "/state.json"
HISTORY = STATE_DIR + "/history"
HISTORY_KEEP = 8
MIN_INTERVAL = datetime.timedelta(days=6)
PRIVATE = 0o600

log = logging.getLogger(__name__)


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def stamp(moment):
    return moment.isoformat(timespec="seconds")


def shown(moment):
    """A moment as people read it in messages."""
    return f"{moment:%Y-%m-%d %H:%M} UTC"


@contextlib.contextmanager
def locked(root):
    """One collect, upload, submit or forget at a time: the timer's run and
    an administrator's must not interleave their outbox and state writes."""
    directory = root.path(STATE_DIR)
    files.make_dirs(directory)
    # The directory itself is locked: any user who may use it can, and no
    # lock file is left behind for another user to trip on.
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


# -- the outbox ---------------------------------------------------------------

@dataclass(frozen=True)
class Pending:
    ciphertext: str
    plaintext: str


def outbox(root):
    """The report's file names in the outbox (which may not exist)."""
    return Pending(root.path(OUTBOX + "/report.asc"),
                   root.path(OUTBOX + "/report.json"))


def _state_dir(root, create=False):
    """The state directory, open (see files.Directory: nothing in it is
    followed when it is a link, whoever put it there)."""
    return files.Directory.open(root.path(STATE_DIR), create=create)


@contextlib.contextmanager
def _below(root, name, create=False):
    """A directory in the state directory (outbox/, history/), open."""
    with _state_dir(root, create) as top, top.sub(name, create) as below:
        yield below


def put(root, plaintext, ciphertext):
    """Make this report the one waiting; it replaces any older one."""
    with _below(root, "outbox", create=True) as box:
        # Plain text first: upload takes the ciphertext as the sign of a
        # report.
        box.write("report.json", plaintext, mode=PRIVATE)
        box.write("report.asc", ciphertext, mode=PRIVATE)


def pending(root):
    """The waiting report's Pending, or None when the outbox is empty."""
    try:
        with _below(root, "outbox") as box:
            waiting = box.is_file("report.asc")
    except FileNotFoundError:
        return None
    return outbox(root) if waiting else None


def read_pending(root):
    """(ciphertext, plaintext) of the waiting report."""
    with _below(root, "outbox") as box:
        return box.read("report.asc"), box.read("report.json")


def discard(root):
    """Empty the outbox."""
    try:
        with _below(root, "outbox") as box:
            box.unlink("report.asc")
            box.unlink("report.json")
    except FileNotFoundError:
        pass


# -- state.json and the history -----------------------------------------------

@dataclass
class State:
    last_attempt: str | None = None
    result: str | None = None
    last_success: str | None = None
    receipt: str | None = None
    history: list = field(default_factory=list)   # newest first

    def next_allowed(self):
        """When the next report may be sent, or None for now."""
        if self.last_success is None:
            return None
        allowed = datetime.datetime.fromisoformat(self.last_success) \
            + MIN_INTERVAL
        return allowed if allowed > now() else None


def load(root):
    """The saved State; an empty one when there is none, or it is damaged."""
    path = root.path(STATE)
    try:
        with _state_dir(root) as top:
            st = State(**json.loads(top.read("state.json")))
        st.next_allowed()               # its dates must read back, too
        return st
    except FileNotFoundError:
        return State()
    except PermissionError:
        raise
    except (OSError, ValueError, TypeError, AttributeError) as e:
        # Starting afresh loses only the throttle and the history index;
        # failing every run from now on would be worse.  (A link is
        # damage too: it is replaced, never followed.)
        log.warning("%s is damaged (%s); starting afresh", path, e)
        return State()


def save(root, st):
    with _state_dir(root, create=True) as top:
        top.write("state.json",
                  (json.dumps(asdict(st), indent=2) + "\n").encode(),
                  mode=PRIVATE)


def attempted(root, result):
    """Record a delivery attempt that did not succeed."""
    st = load(root)
    st.last_attempt, st.result = stamp(now()), result
    save(root, st)


def sent(root, receipt, report):
    """Record a report the server took: state, and a copy in the history."""
    st = load(root)
    moment = now()
    name = moment.strftime("%Y%m%dT%H%M%S.%fZ.json")
    with _below(root, "history", create=True) as history:
        history.write(name, report, mode=PRIVATE)
    st.last_attempt = st.last_success = stamp(moment)
    st.result, st.receipt = "sent", receipt
    st.history = [{"sent": stamp(moment), "receipt": receipt, "file": name}] \
        + st.history[:HISTORY_KEEP - 1]
    save(root, st)
    _prune(root, {entry["file"] for entry in st.history})


def forgotten(root, receipt):
    """The server deleted this host: start afresh, with no history."""
    save(root, State(last_attempt=stamp(now()), result="forgotten",
                     receipt=receipt))
    _prune(root, set())


def _prune(root, keep):
    """Remove history copies that the index no longer lists."""
    try:
        with _below(root, "history") as history:
            for name in history.names():
                if name not in keep:
                    history.unlink(name)
    except FileNotFoundError:
        return


def history_copy(root, entry):
    """The bytes of a report in the history."""
    with _below(root, "history") as history:
        return history.read(entry["file"])
