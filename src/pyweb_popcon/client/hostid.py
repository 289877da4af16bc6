"""The host ID: a random UUID that names this machine's reports.

Made on first use by a command allowed to write state, kept mode 0600 in
/var/lib/pyweb-popcon/host-id, and made anew when /etc/machine-id changes
(the image was cloned).  Only a hash of the machine ID is kept beside it.
"""

import hashlib
import json
import os
import time
import uuid
from dataclasses import dataclass

from pyweb_popcon.common import files
from pyweb_popcon.client.paths import STATE_DIR

HOST_ID = STATE_DIR + "/host-id"
MACHINE_ID = "/etc/machine-id"
AGE_BUCKETS = ((1, "1"), (4, "2-4"), (24, "5-24"))


class HostIDError(Exception):
    """No usable host ID, with the reason; `renewable` if collect fixes it."""

    def __init__(self, reason, renewable=True):
        super().__init__(reason)
        self.renewable = renewable


@dataclass(frozen=True)
class HostID:
    host_id: str
    created: float
    machine: str

    def age(self, now=None):
        """Weeks since the ID was made, as a report's bucket."""
        weeks = int(((now or time.time()) - self.created) // (7 * 86400)) + 1
        return next((b for limit, b in AGE_BUCKETS if weeks <= limit), "25+")


def _machine(root):
    try:
        with open(root.path(MACHINE_ID), "rb") as f:
            machine_id = f.read().strip()
    except OSError:
        machine_id = b""
    return hashlib.sha256(b"pyweb-popcon:" + machine_id).hexdigest()


def read(root):
    """The current host ID, or HostIDError saying why there is none."""
    path = root.path(HOST_ID)
    try:
        # Never through a link planted in the state directory.
        with files.Directory.open(root.path(STATE_DIR)) as state:
            doc = json.loads(state.read(os.path.basename(HOST_ID)))
        found = HostID(str(uuid.UUID(doc["host_id"])), float(doc["created"]),
                       str(doc["machine"]))
    except FileNotFoundError:
        raise HostIDError(f"no host ID yet ({path}); the first collect "
                          "makes one") from None
    except PermissionError:
        raise HostIDError(f"{path} is readable by root only",
                          renewable=False) from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise HostIDError(f"{path} is damaged ({e}); the next collect "
                          "makes a new one") from None
    if found.machine != _machine(root):
        raise HostIDError(f"{root.path(MACHINE_ID)} changed since the host "
                          "ID was made; the next collect makes a new one")
    return found


def ensure(root):
    """The host ID, made anew when missing, damaged or from another machine."""
    try:
        return read(root)
    except HostIDError as e:
        if not e.renewable:
            raise
        return renew(root)


def renew(root):
    """Make and store a new random host ID."""
    new = HostID(str(uuid.uuid4()), time.time(), _machine(root))
    with files.Directory.open(root.path(STATE_DIR), create=True) as state:
        state.write(os.path.basename(HOST_ID),
                    json.dumps(new.__dict__).encode(), mode=0o600)
    return new
