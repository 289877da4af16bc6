"""The server's one clock: the hour.

A receive time to the second is an identifier: whoever holds a log of the
TLS connections to the server lines a host ID up with an address by it.
Expiry needs days, so the server keeps no time finer than the hour
anywhere it writes one: the store's receive times, spool and quarantine
file times, run records.  (A file's change time is the kernel's; a
submission's lasts only until the next ingest.)
"""

import datetime
import time

HOUR_NS = 3600 * 10**9


def hour(ns):
    """The start of the hour `ns` (nanoseconds since the epoch) is in."""
    return ns - ns % HOUR_NS


def this_hour():
    """The start of the current hour, in nanoseconds since the epoch."""
    return hour(time.time_ns())


def this_hour_iso():
    """The start of the current hour as ISO 8601, UTC."""
    return datetime.datetime.fromtimestamp(
        this_hour() // 10**9, datetime.timezone.utc).isoformat()
