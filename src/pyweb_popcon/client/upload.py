"""Deliver ciphertext to the server, in bounded time whatever the server does,
and record what happened (state, history, journal), whichever the transport:
HTTPS here, DNS in dnssend.py (TRANSPORT="dns").

The HTTPS protocol: POST <SUBMIT_URL>, the armored OpenPGP message as the body,
Content-Type application/pgp-encrypted, a User-Agent naming only this
program.  The server takes it with 202 and {"status": "ok", "receipt": ...}.
A 4xx other than 408 or 429 means it will never take this message; every
other failure may go better later.  Redirects are not followed: the
ciphertext goes to the configured URL or nowhere.
"""

import dataclasses
import http.client
import json
import logging
import os
import re
import socket
import threading
import time
import uuid
from urllib.parse import urlsplit

import requests

from pyweb_popcon import __version__
from pyweb_popcon.client import hostid, settings, state
from pyweb_popcon.common import journal


SENT, TEMPORARY, REJECTED = "sent", "temporary", "rejected"
HEADERS = {"Content-Type": "application/pgp-encrypted",
           "User-Agent": f"pyweb-popcon/{__version__}"}
RETRY_LATER = (408, 429)
MAX_REPLY = 64 * 1024
_RECEIPT = re.compile(r"[\x21-\x7e]{1,128}")   # printable, no spaces

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
    # TRANSPORT="dns" (dnssend.py), within the same `run`:
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


# -- the way out --------------------------------------------------------------

def _answers(address, timeout):
    try:
        with socket.create_connection(address, timeout=timeout):
            return True
    except OSError:
        return False


def _shown(proxy):
    """A proxy URL without the password it may carry."""
    parts = urlsplit(proxy)
    return f"{parts.scheme}://{parts.hostname}" + (
        f":{parts.port}" if parts.port else "")


def route(config):
    """(proxies for requests, or None for the environment's; in words)."""
    tor = config["USE_TOR"]
    if tor == "yes" or (tor == "maybe"
                        and _answers(LIMITS.tor, LIMITS.connect)):
        # socks5h: Tor resolves the server's name, so DNS does not leak.
        # With "yes" a Tor that does not answer is a failure, never a
        # reason to go direct.
        proxy = "socks5h://%s:%d" % LIMITS.tor
        return {"http": proxy, "https": proxy}, f"through Tor ({proxy})"
    if config["HTTP_PROXY"]:
        proxy = config["HTTP_PROXY"]
        return ({"http": proxy, "https": proxy},
                f"through the proxy {_shown(proxy)}")
    url = config["SUBMIT_URL"]
    proxy = requests.utils.get_environ_proxies(url).get(urlsplit(url).scheme)
    return None, (f"through the environment's proxy {_shown(proxy)}"
                  if proxy else "directly")


# -- one message --------------------------------------------------------------

def trusted(root, config):
    """requests' verify=: CA_FILE in `root`, else True (the system's)."""
    return root.path(config["CA_FILE"]) if config["CA_FILE"] else True


def deliver(body, config, verify=True):
    """POST `body` to SUBMIT_URL: an Outcome within LIMITS.run seconds.
    `verify`: the certificate authorities to trust, as trusted() says."""
    limits = LIMITS
    deadline = time.monotonic() + limits.run
    proxies, how = route(config)
    url = config["SUBMIT_URL"]
    if verify is not True:
        try:
            open(verify, "rb").close()
        except OSError as e:
            return Outcome(TEMPORARY, f"cannot read CA_FILE {verify} (set in "
                           f"{config.origins['CA_FILE']}): {e.strerror}")
    log.debug("sending %d bytes to %s %s", len(body), url, how)
    waits = list(limits.backoff)
    attempt = 1
    while True:
        outcome = _attempt(url, body, proxies, verify, limits, deadline)
        wait = waits.pop(0) if outcome.result == TEMPORARY and waits else None
        if wait is None or time.monotonic() + wait >= deadline:
            break
        log.warning("attempt %d to %s %s failed: %s; trying again in %g s",
                    attempt, url, how, outcome.reason, wait)
        time.sleep(wait)
        attempt += 1
    if outcome.status is None:      # it failed below HTTP: say which way
        outcome = dataclasses.replace(
            outcome, reason=f"{outcome.reason}, sending {how}")
    return outcome


def _attempt(url, body, proxies, verify, limits, deadline):
    """One POST, given up after limits.attempt seconds or at the deadline."""
    reply = {}

    def post():
        try:
            with requests.post(url, data=body, headers=HEADERS,
                               proxies=proxies, verify=verify,
                               allow_redirects=False,
                               timeout=(limits.connect, limits.read),
                               stream=True) as response:
                reply["response"] = response, _read(response)
        except Exception as e:         # handed over to the waiting thread
            reply["error"] = e

    # requests bounds each read, not the whole exchange: a server that
    # trickles its headers a byte at a time would hold it for ever.  So
    # the POST runs in a thread that is waited for only so long; one given
    # up on lingers until the server lets go or the process exits.
    allowed = max(0.0, min(limits.attempt, deadline - time.monotonic()))
    worker = threading.Thread(target=post, name="pyweb-popcon-post",
                              daemon=True)
    worker.start()
    worker.join(allowed)
    if worker.is_alive():
        return Outcome(TEMPORARY,
                       f"no complete reply within {allowed:.1f} s")
    if "error" in reply:
        return Outcome(TEMPORARY, _why(reply["error"]))
    return _judge(*reply["response"])


def _read(response):
    """The reply's body, cut off just past MAX_REPLY bytes."""
    data = b""
    for chunk in response.iter_content(8192):
        data += chunk
        if len(data) > MAX_REPLY:
            break
    return data


def _printable(text, limit=100):
    """Text from the server, safe to put in a log line."""
    return re.sub(r"[^\x20-\x7e]", "?", str(text).strip())[:limit]


def _receipt(data):
    """The receipt of a protocol reply, or None."""
    try:
        doc = json.loads(data)
    except ValueError:
        return None
    if (isinstance(doc, dict) and doc.get("status") == "ok"
            and isinstance(doc.get("receipt"), str)
            and _RECEIPT.fullmatch(doc["receipt"])):
        return doc["receipt"]
    return None


def _judge(response, data):
    """The Outcome of a complete HTTP reply."""
    status = response.status_code
    said = f"HTTP {status} {_printable(response.reason)}".rstrip()
    if status == 202:
        receipt = _receipt(data)
        if receipt:
            return Outcome(SENT, said, status, receipt)
        return Outcome(TEMPORARY, f"{said}, but the reply is not "
                       '{"status": "ok", "receipt": ...}', status)
    if 300 <= status < 400:
        where = _printable(response.headers.get("Location", "nowhere"))
        return Outcome(TEMPORARY, f"{said}, a redirect to {where}, which is "
                       "not followed: check SUBMIT_URL", status)
    if 400 <= status < 500 and status not in RETRY_LATER:
        return Outcome(REJECTED, f"{said}: the server refuses it for good",
                       status)
    return Outcome(TEMPORARY, said, status)


_FAILURES = (
    (http.client.HTTPException, "the reply is not HTTP"),
    (requests.exceptions.SSLError, "TLS failed"),
    (requests.exceptions.ProxyError, "the proxy failed"),
    (requests.exceptions.ConnectTimeout, "no connection in time"),
    (requests.exceptions.ReadTimeout, "no reply in time"),
    (requests.exceptions.ConnectionError, "the connection failed"),
)


def _why(error):
    """What went wrong, for a person: the kind, then the deepest cause."""
    # requests wraps urllib3's errors, which wrap what actually happened.
    chain = [error]
    while True:
        inner = getattr(chain[-1], "reason", None) or next(
            (a for a in chain[-1].args if isinstance(a, BaseException)), None)
        if not isinstance(inner, BaseException):
            break
        chain.append(inner)
    kind = next((k for cls, k in _FAILURES
                 if any(isinstance(e, cls) for e in chain)),
                "the request failed")
    cause = chain[-1]
    if isinstance(cause, OSError) and cause.strerror:
        detail = cause.strerror
    else:   # urllib3 starts with the pool or connection: not news
        detail = re.sub(r"^(\w+\(.*?\)|<.*?>): ", "", str(cause))
        detail = re.sub(r".*\[Errno -?\d+\] ", "", detail)
    return f"{kind}: {_printable(detail, 200)}"


# -- recording what happened --------------------------------------------------

def too_soon(root):
    """True, with a message, while the last report is under 6 days old."""
    later = state.load(root).next_allowed()
    if later:
        log.info("not sending: the last report went less than %d days ago; "
                 "the next may go after %s (--force sends it now)",
                 state.MIN_INTERVAL.days, state.shown(later))
    return later is not None


def plan(config, body):
    """How `body` would be sent, for a person: "to ... through ..."."""
    if config["TRANSPORT"] == "dns":
        from pyweb_popcon.client import dnssend
        return dnssend.plan(config, body)
    return f"to {config['SUBMIT_URL']} {route(config)[1]}"


def _deliver(root, config, body):
    """`body` sent by the configured transport: its Outcome."""
    if config["TRANSPORT"] == "dns":
        from pyweb_popcon.client import dnssend
        return dnssend.deliver(body, config)
    return deliver(body, config, trusted(root, config))


def send_pending(root, config, force=False):
    """Send the report waiting in the outbox; the exit code."""
    if state.pending(root) is None:
        log.info("nothing to send: the outbox is empty")
        return 0
    if not force and too_soon(root):
        return 0
    body, plaintext = state.read_pending(root)
    outcome = _deliver(root, config, body)
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


def send_forget(root, config, body):
    """Deliver a forget message; on success start afresh.  The exit code."""
    outcome = _deliver(root, config, body)
    if outcome.result != SENT:
        return _failure(root, outcome, "the host ID and the history are "
                        "unchanged: run forget again later")
    hostid.renew(root)
    state.forgotten(root, outcome.receipt)
    log.info("forget message taken by %s: receipt %s; this machine has a new "
             "host ID and no history", settings.destination(config), outcome.receipt,
             extra=journal.fields(FORGET_SENT, RECEIPT=outcome.receipt,
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
