"""Deliver ciphertext over HTTPS (TRANSPORT="https"), a transport of
delivery.py.

The protocol: POST <SUBMIT_URL>, the armored OpenPGP message as the body,
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
import re
import socket
import threading
import time
from urllib.parse import urlsplit

import requests

from pyweb_popcon import __version__
from pyweb_popcon.client import delivery
from pyweb_popcon.client.delivery import REJECTED, SENT, TEMPORARY, Outcome

HEADERS = {"Content-Type": "application/pgp-encrypted",
           "User-Agent": f"pyweb-popcon/{__version__}"}
RETRY_LATER = (408, 429)
MAX_REPLY = 64 * 1024
_RECEIPT = re.compile(r"[\x21-\x7e]{1,128}")   # printable, no spaces

log = logging.getLogger(__name__)


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
    limits = delivery.LIMITS
    if tor == "yes" or (tor == "maybe"
                        and _answers(limits.tor, limits.connect)):
        # socks5h: Tor resolves the server's name, so DNS does not leak.
        # With "yes" a Tor that does not answer is a failure, never a
        # reason to go direct.
        proxy = "socks5h://%s:%d" % limits.tor
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

def plan(config, body):
    """How `body` would be sent, for a person: "to ... through ..."."""
    return f"to {config['SUBMIT_URL']} {route(config)[1]}"


def deliver(body, config, root):
    """POST `body` to SUBMIT_URL, trusting CA_FILE under `root` if set:
    an Outcome within LIMITS.run seconds."""
    limits = delivery.LIMITS
    deadline = time.monotonic() + limits.run
    proxies, how = route(config)
    url = config["SUBMIT_URL"]
    # requests' verify=: CA_FILE in `root`, else True (the system's).
    verify = root.path(config["CA_FILE"]) if config["CA_FILE"] else True
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
