"""`status`: how the server is doing, and what needs attention.

The spool's backlog and quarantine, the last ingest, expire and aggregate
(from their state files, see runs), the hosts in the store and its size,
and the keys with their expiry.  Something needs attention when a
submission has waited in incoming/ for over a day, a last run failed or
did not finish, or the newest key (the one clients encrypt to) expires
within 30 days; older keys expiring is a rotation doing its work.
"""

import datetime
import time
from typing import NamedTuple

from pyweb_popcon.server import settings
from pyweb_popcon.server.admin import keys, runs
from pyweb_popcon.server.spool import Spool

DAY = 86_400
BACKLOG_AGE = DAY           # older than this in incoming/ needs attention
KEY_WARNING = 30 * DAY      # the newest key expiring sooner needs attention


class Status(NamedTuple):
    lines: list
    attention: list


def _when(stamp, now):
    """'2026-11-28 20:01 UTC (3 hours ago)' for seconds since the epoch."""
    moment = datetime.datetime.fromtimestamp(stamp, datetime.timezone.utc)
    return f"{moment:%Y-%m-%d %H:%M} UTC ({_span(stamp - now)})"


def _span(seconds):
    ahead, seconds = seconds > 0, abs(seconds)
    for unit, size in (("day", DAY), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = int(seconds // size)
            said = f"{n} {unit}{'s' if n != 1 else ''}"
            break
    else:
        said = "less than a minute"
    return f"in {said}" if ahead else f"{said} ago"


def _megabytes(size):
    return f"{size / 1e6:,.1f} MB"


def _spool(conf, now, lines, attention):
    spool = Spool(conf["SPOOL_DIR"])
    waiting = spool.backlog()
    if waiting.files:
        lines.append(f"Incoming: {waiting.files} submissions waiting, the "
                     f"oldest received {_when(waiting.oldest, now)}")
        if now - waiting.oldest > BACKLOG_AGE:
            attention.append(f"a submission has waited in {Spool.INCOMING}/ "
                             "for over a day: is ingest running? (systemctl "
                             "status pyweb-popcon-ingest.path)")
    else:
        lines.append("Incoming: empty")
    held = spool.by_reason()
    lines.append("Quarantine: " + (
        f"{sum(held.values())} submissions (" + ", ".join(
            f"{n} {reason}" for reason, n in sorted(held.items()))
        + "); after a fix, pyweb-popcon-server requeue [--reason R]"
        if held else "empty"))


def _runs(conf, now, lines, attention):
    for command in runs.COMMANDS:
        record = runs.last(conf["STATE_DIR"], command)
        if record is None:
            lines.append(f"Last {command}: never")
            continue
        try:
            started = _when(datetime.datetime.fromisoformat(
                record["started"]).timestamp(), now)
        except (KeyError, TypeError, ValueError):
            started = "?"
        outcome = record.get("outcome", "?")
        said = f" ({record['summary']})" if record.get("summary") else ""
        lines.append(f"Last {command}: {started}, {outcome}{said}")
        if outcome in ("failed", "killed", "unreadable"):
            attention.append(f"the last {command} {outcome}"
                             + ("" if outcome == "failed" else
                                " (did not finish)" if outcome == "killed"
                                else "")
                             + ": journalctl -t pyweb-popcon-server")


def _store(store, lines):
    lines.append(f"Hosts: {store.live_hosts():,} in the store, "
                 f"{_megabytes(store.size())} ({store.engine})")


def _keys(conf, now, lines, attention):
    found = keys.keys(settings.gnupg_home(conf))
    if not found:
        lines.append("Keys: none (pyweb-popcon-server keygen makes one)")
        attention.append("there is no server key: pyweb-popcon-server "
                         "keygen")
        return
    lines.append("Keys:")
    for key in found:
        newest = key is found[-1]
        if key.expires is None:
            expiry = "does not expire"
        elif key.expires > now:
            expiry = f"expires {_when(key.expires, now)}"
        else:
            expiry = (f"expired {_when(key.expires, now)}, retired by "
                      f"expire {conf['EXPIRE_DAYS']} days after")
        role = "current" if newest else "older (rotated out)"
        lines.append(f"  {key.fingerprint} {role}, {expiry}")
        if newest and key.expires is not None and \
                key.expires - now < KEY_WARNING:
            attention.append(f"the current key {key.fingerprint} expires "
                             "within 30 days: pyweb-popcon-server keygen "
                             "--rotate")


def gather(conf, store, now=None):
    """The Status of the server configured by `conf`, its `store` open."""
    now = time.time() if now is None else now
    lines, attention = [], []
    _spool(conf, now, lines, attention)
    _runs(conf, now, lines, attention)
    _store(store, lines)
    _keys(conf, now, lines, attention)
    return Status(lines, attention)


def describe(status):
    """The text `status` prints."""
    out = status.lines + ([f"Needs attention: {a}" for a in status.attention]
                          or ["Needs attention: nothing"])
    return "\n".join(out) + "\n"
