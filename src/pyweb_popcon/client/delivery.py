"""Deliver the outbox's ciphertext to the server, in bounded time whatever
the server does, and record what happened (state, history, journal),
whichever the transport.

A transport is a module: https (TRANSPORT="https") or dns
(TRANSPORT="dns"), chosen by the caller and handed in, so that this
module imports neither.  Each has
    plan(config, body)          how `body` would be sent, for a person;
    deliver(body, config, root) send it: an Outcome within LIMITS.run s.
"""

import dataclasses
import logging
import os
import uuid

from pyweb_popcon.client import hostid, settings, state
from pyweb_popcon.common import journal


SENT, TEMPORARY, REJECTED = "sent", "temporary", "rejected"

# Journal MESSAGE_IDs, made once and fixed for good, so that monitoring can
# select the outcomes with `journalctl MESSAGE_ID=...`.
REPORT_SENT = uuid.UUID("3dd650de4be14e4a935e294373dcd036")
DELIVERY_FAILED = uuid.UUID("1a4943d5dd3f4a6a86e3e1eaaf8309dc")
FORGET_SENT = uuid.UUID("361b49be4f8b441e9cb0dc35627e1eda")

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Limits:
    """How long a delivery may take, in seconds."""
    connect: float = 15         # to open a connection (or the proxy's)
    read: float = 30            # the longest silence while awaiting the reply
    attempt: float = 60         # one whole POST, however slow the reply
    backoff: tuple = (10, 30)   # the waits before the 2nd and 3rd attempts
    run: float = 240            # all of it: well within 5 minutes
    tor: tuple = ("127.0.0.1", 9050)
    # TRANSPORT="dns" (dns.py), within the same `run`:
    dns_wait: float = 12        # one lookup: the C library's own tries
    dns_window: int = 8         # lookups at a time
    dns_tries: int = 6          # of one chunk, each under a name of its own
    dns_backoff: float = 0.5    # before a chunk's 2nd try, doubling after


LIMITS = Limits()


@dataclasses.dataclass(frozen=True)
class Outcome:
    result: str                 # SENT, TEMPORARY or REJECTED
    reason: str                 # for a person: what the server did
    status: int | None = None   # the HTTP status, when there was one
    receipt: str | None = None


def too_soon(root):
    """True, with a message, while the last report is under 6 days old."""
    later = state.load(root).next_allowed()
    if later:
        log.info("not sending: the last report went less than %d days ago; "
                 "the next may go after %s (--force sends it now)",
                 state.MIN_INTERVAL.days, state.shown(later))
    return later is not None


def send_pending(root, config, transport, force=False):
    """Send the report waiting in the outbox; the exit code."""
    if state.pending(root) is None:
        log.info("nothing to send: the outbox is empty")
        return 0
    if not force and too_soon(root):
        return 0
    body, plaintext = state.read_pending(root)
    outcome = transport.deliver(body, config, root)
    if outcome.result == SENT:
        state.sent(root, outcome.receipt, plaintext)
        state.discard(root)
        log.info("report sent to %s: receipt %s", settings.destination(config),
                 outcome.receipt, extra=journal.fields(
                     REPORT_SENT, RECEIPT=outcome.receipt,
                     HTTP_STATUS=outcome.status))
        return 0
    if outcome.result == REJECTED:
        state.discard(root)
    return _failure(root, outcome, "the report " + (
        "stays in the outbox for the next run"
        if outcome.result == TEMPORARY else "is dropped"))


def send_forget(root, config, transport, body):
    """Deliver a forget message; on success start afresh.  The exit code."""
    outcome = transport.deliver(body, config, root)
    if outcome.result != SENT:
        return _failure(root, outcome, "the host ID and the history are "
                        "unchanged: run forget again later")
    hostid.renew(root)
    state.forgotten(root, outcome.receipt)
    log.info("forget message taken by %s: receipt %s; this machine has a new "
             "host ID and no history", settings.destination(config),
             outcome.receipt, extra=journal.fields(
                 FORGET_SENT, RECEIPT=outcome.receipt,
                 HTTP_STATUS=outcome.status))
    return 0


def _failure(root, outcome, consequence):
    """Record and log a delivery that did not succeed; the exit code."""
    temporary = outcome.result == TEMPORARY
    result = f"delivery failed: {outcome.reason}; {consequence}"
    state.attempted(root, result)
    log.log(logging.WARNING if temporary else logging.ERROR, "%s", result,
            extra=journal.fields(DELIVERY_FAILED,
                                 HTTP_STATUS=outcome.status))
    return os.EX_TEMPFAIL if temporary else os.EX_PROTOCOL
