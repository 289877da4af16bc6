"""Deliver ciphertext as DNS queries through this machine's own resolver
(TRANSPORT="dns"), a transport of delivery.py.

The binary OpenPGP message is cut into chunks, each an A query for a name
under SUBMIT_ZONE (pyweb_popcon.dnswire says how), asked through the C
library's getaddrinfo(), the way every program here resolves names:
/etc/nsswitch.conf, then /etc/resolv.conf's servers or systemd-resolved.
The resolver (the ISP's, the company's, a public one) asks the server's
authoritative DNS server and passes only its own address on; the server
never sees this machine's.  No connection is made to the server, and no
resolver is chosen here.

Every chunk's answer acknowledges it; a chunk that gets none (lost, a
temporary failure, a timeout) is asked again under a name of its own
(the attempt is part of the name), so no cached answer, negative or not,
stands in the way.  The whole exchange is bounded by LIMITS.run, as an
HTTPS upload is.
"""

import dataclasses
import logging
import queue
import secrets
import socket
import threading
import time

from pyweb_popcon import dnswire, openpgp
from pyweb_popcon.client import delivery
from pyweb_popcon.client.delivery import REJECTED, SENT, TEMPORARY, Outcome

log = logging.getLogger(__name__)

# Times the server may acknowledge every chunk without completing the
# message (it lost them: a restart, or they waited too long) before the
# whole message is sent again, once.
MAX_ROUNDS = 2


def lookup(name):
    """The IPv4 addresses the system's resolver gives for `name`."""
    # The final dot: the name is complete, no search domain is appended.
    infos = socket.getaddrinfo(name + ".", None, socket.AF_INET,
                               socket.SOCK_DGRAM)
    return {info[4][0] for info in infos}


_FAILURES = {
    socket.EAI_NONAME: "no such name (NXDOMAIN)",
    socket.EAI_NODATA: "no address in the answer",
    socket.EAI_AGAIN: "the resolver could not answer (a temporary failure "
                      "or no answer in time)",
}


def _why(error):
    if isinstance(error, socket.gaierror):
        return _FAILURES.get(error.errno, error.strerror or str(error))
    return getattr(error, "strerror", None) or str(error)


@dataclasses.dataclass
class Exchange:
    """One message's chunks, asked and asked again until acknowledged."""
    zone: str
    payloads: list
    limits: delivery.Limits
    message_id: bytes = dataclasses.field(
        default_factory=lambda: secrets.token_bytes(
            dnswire.MESSAGE_ID_BYTES))
    queries: int = 0            # lookups started
    retried: set = dataclasses.field(default_factory=set)

    def run(self):
        """The Outcome, within limits.run seconds."""
        deadline = time.monotonic() + self.limits.run
        # Tries go on counting from round to round: a name is never asked
        # twice.  Each round has dns_tries more of them.
        self.tries = [0] * len(self.payloads)
        for rounds in range(1, MAX_ROUNDS + 1):
            outcome = self._round(deadline, rounds * self.limits.dns_tries)
            if outcome is not None:
                return outcome
        return Outcome(TEMPORARY, f"the server acknowledged all "
                       f"{len(self.payloads)} chunks {MAX_ROUNDS} times but "
                       "did not complete the message")

    def _round(self, deadline, most_tries):
        """Send every chunk until each is acknowledged, none asked more than
        `most_tries` times in all: an Outcome, or None when all were stored
        but the message was not completed."""
        count, limits = len(self.payloads), self.limits
        answers = queue.Queue()
        tries = self.tries
        due = dict.fromkeys(range(count), 0.0)   # chunk: when to ask
        flying = {}                              # (chunk, attempt): since
        acked, errors = set(), {}
        while len(acked) < count:
            now = time.monotonic()
            if now >= deadline:
                last = f"; the last failure: {errors[max(errors)]}" \
                    if errors else ""
                return Outcome(TEMPORARY, f"{len(acked)} of {count} chunks "
                               f"acknowledged within {limits.run:g} s{last}")
            for key, since in list(flying.items()):
                if now - since >= limits.dns_wait:
                    del flying[key]
                    if key[0] not in acked:
                        errors[key[0]] = (f"no answer within "
                                          f"{limits.dns_wait:g} s")
                        due[key[0]] = now
                        self.retried.add(key[0])
            for chunk in sorted(due, key=due.get):
                if len(flying) >= limits.dns_window or due[chunk] > now:
                    break
                if tries[chunk] >= most_tries:
                    return Outcome(TEMPORARY, f"chunk {chunk} of {count} "
                                   f"had no acknowledgement after "
                                   f"{tries[chunk]} tries: {errors[chunk]}")
                del due[chunk]
                flying[chunk, tries[chunk]] = now
                self._ask(chunk, count, tries[chunk], answers)
                tries[chunk] += 1
            wake = min([deadline, *(since + limits.dns_wait
                                    for since in flying.values()),
                        *due.values()])
            try:
                chunk, attempt, name, result = answers.get(
                    timeout=max(0.005, wake - time.monotonic()))
            except queue.Empty:
                continue
            current = flying.pop((chunk, attempt), None) is not None
            code, why = _judge(name, result)
            if code == dnswire.Code.COMPLETE:
                return Outcome(SENT, f"{count} chunks acknowledged in "
                               f"{self.queries} DNS queries", None,
                               dnswire.encode(self.message_id))
            if code == dnswire.Code.BUSY:
                return Outcome(TEMPORARY, "the server cannot take "
                               "submissions now (it answered: busy)")
            if code == dnswire.Code.REFUSED:
                return Outcome(REJECTED, "the server refuses the message for "
                               "good (it answered: refused)")
            if code == dnswire.Code.STORED:
                acked.add(chunk)
                due.pop(chunk, None)
            elif current and chunk not in acked:
                # Asked again after a pause, doubling with each try.
                errors[chunk] = why
                due[chunk] = time.monotonic() + min(
                    limits.dns_backoff * 2 ** (tries[chunk] - 1), 8.0)
                self.retried.add(chunk)
        return None

    def _ask(self, chunk, count, attempt, answers):
        """Look the chunk's name up in a thread of its own: a lookup the
        C library holds on to is waited for only so long, and one given
        up on lingers until the library lets go or the process ends."""
        name = dnswire.query_name(self.zone, self.message_id, chunk, count,
                                  attempt, self.payloads[chunk])
        self.queries += 1

        def ask():
            try:
                result = lookup(name)
            except (OSError, UnicodeError) as e:
                result = e
            answers.put((chunk, attempt, name, result))

        threading.Thread(target=ask, name="pyweb-popcon-dns",
                         daemon=True).start()


def _judge(name, result):
    """(the server's Code or None, what went wrong) for a lookup's result."""
    if isinstance(result, BaseException):
        return None, _why(result)
    codes = {dnswire.code(name, address) for address in result} - {None}
    if len(codes) == 1:
        return codes.pop(), None
    return None, (f"the answer {', '.join(sorted(result))} is no "
                  "acknowledgement from the server (does the resolver "
                  "filter answers in 127.0.0.0/8?)")


def plan(config, body):
    """How `body` would be sent, for a person."""
    count = len(dnswire.split(openpgp.dearmor(body), config["SUBMIT_ZONE"]))
    return (f"as {count} DNS queries under {config['SUBMIT_ZONE']} through "
            "the system's resolver")


def deliver(body, config, root=None):
    """Send the armored message `body` as DNS queries under SUBMIT_ZONE:
    an Outcome within LIMITS.run seconds; the receipt is the message ID.
    (`root` is not needed: no file is read.)"""
    zone = config["SUBMIT_ZONE"]
    try:
        message = openpgp.dearmor(body)
    except ValueError as e:
        return Outcome(REJECTED, f"the outbox holds no OpenPGP message: {e}")
    payloads = dnswire.split(message, zone)
    exchange = Exchange(zone, payloads, delivery.LIMITS)
    log.debug("sending %d bytes as %d queries under %s through the "
              "system's resolver", len(message), len(payloads), zone)
    outcome = exchange.run()
    if exchange.retried:
        log.info("%d of %d chunks needed more than one query (%d queries "
                 "in all)", len(exchange.retried), len(payloads),
                 exchange.queries)
    if outcome.result != SENT:
        outcome = dataclasses.replace(
            outcome, reason=f"{outcome.reason}, sending as DNS queries under "
                            f"{zone} through the system's resolver")
    return outcome
