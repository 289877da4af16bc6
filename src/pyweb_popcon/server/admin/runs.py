"""What the last ingest, expire and aggregate did: a small state file each.

STATE_DIR/runs/COMMAND.json is written when a run starts (with its
process ID) and again when it ends, with its outcome and its one-line
summary.  A state file rather than the journal: it records runs by hand
as well as the units' runs, on machines without systemd too, needs no
right to read the journal, and `status` reads it in a millisecond.  The
journal keeps the details.  A run that was killed stays "running" with a
process ID that is gone, and `status` says it did not finish.
"""

import contextlib
import json
import os

from pyweb_popcon.common import files
from pyweb_popcon.server import clock

COMMANDS = ("ingest", "expire", "aggregate")


def _path(state_dir, command):
    return os.path.join(state_dir, "runs", f"{command}.json")


def _write(state_dir, command, record):
    # Times to the hour (see clock.py): an ingest run follows each
    # submission, so its times would be the submission's.
    files.write_atomic(_path(state_dir, command),
                       (json.dumps(record) + "\n").encode(),
                       time_ns=clock.this_hour())


class Run:
    """The run being recorded; `summary` is what it says when it ends,
    `failed` whether it ended without doing all its work."""

    def __init__(self):
        self.summary = ""
        self.failed = False


@contextlib.contextmanager
def recorded(state_dir, command):
    """Record a run of `command` around the block: failed if it raises."""
    record = {"command": command, "started": clock.this_hour_iso(),
              "pid": os.getpid(), "outcome": "running"}
    _write(state_dir, command, record)
    run = Run()
    try:
        yield run
    except BaseException as e:
        record.update(finished=clock.this_hour_iso(), outcome="failed",
                      summary=str(e) or type(e).__name__)
        try:
            _write(state_dir, command, record)
        except OSError:     # a full disk: the failure itself is what counts
            pass
        raise
    record.update(finished=clock.this_hour_iso(),
                  outcome="failed" if run.failed else "ok",
                  summary=run.summary)
    _write(state_dir, command, record)


def last(state_dir, command):
    """The record of the last run of `command`, or None if there was none.
    A run still "running" whose process is gone is "killed"."""
    try:
        with open(_path(state_dir, command), encoding="utf-8") as f:
            record = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        return {"command": command, "outcome": "unreadable",
                "summary": str(e)}
    if record.get("outcome") == "running" and not _alive(record.get("pid")):
        record["outcome"] = "killed"
    return record


def _alive(pid):
    try:
        os.kill(int(pid), 0)
    except (TypeError, ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True
