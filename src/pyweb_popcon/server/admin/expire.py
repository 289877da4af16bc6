"""Expiry: forget hosts, and quarantined submissions (files or not),
older than EXPIRE_DAYS;
and delete temporary files in the spool that no writer is left for.

A host is gone once its newest message is `days` days old or older,
counted from the start of the hour it arrived in (the store keeps no
finer time, see clock.py): with the default, a machine that stopped
reporting is forgotten within the hour before 20 days after its last
report reached the receiver, never later.
"""

import logging
import time

from pyweb_popcon.server.progress import bar
from pyweb_popcon.server.spool import STALE_SECONDS, Spool

logger = logging.getLogger(__name__)

DAY_NS = 86_400 * 10**9


def run(store, spool_dir, days, now_ns=None):
    """(hosts, quarantined submissions) deleted."""
    now_ns = now_ns if now_ns is not None else time.time_ns()
    cutoff = now_ns - days * DAY_NS
    # Received exactly `days` ago counts as old: < cutoff + 1.
    with bar(0, "host", "expire") as shown:
        def advance(done, total):
            if shown.total != total:
                shown.total = total
                shown.refresh()
            shown.update(done)
        hosts = store.expire(cutoff + 1, advance)
    spool = Spool(spool_dir)
    removed = spool.expire(cutoff)
    logger.info("expire: %d hosts and %d quarantined submissions older than "
                "%d days deleted", hosts, removed, days)
    stale = spool.remove_stale(now_ns / 1e9)
    if stale:
        logger.info("expire: %d temporary files older than %d s deleted "
                    "from the spool (writers killed mid-write)", stale,
                    STALE_SECONDS)
    return hosts, removed
