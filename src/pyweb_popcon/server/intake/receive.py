"""The receiver: a plain WSGI application that spools ciphertext.

It checks what it can without a key (method, type, size, OpenPGP armor),
stores the body into the spool (written whole, fsynced, renamed: see
spool.py) and only then answers 202 with a receipt.  While the spool is
full (see limits.py), or cannot be written, it answers 503 with
Retry-After.  It never decrypts, never imports GnuPG, and never looks at
REMOTE_ADDR or forwarding headers, so there is no address to store or log.

For gunicorn or any WSGI server:
    gunicorn 'pyweb_popcon.server.intake.receive:from_config("/etc/pyweb-popcon-server.conf")'
"""

import http
import json
import logging
import os

from pyweb_popcon import report
from pyweb_popcon.server import published
from pyweb_popcon.server.intake import limits
from pyweb_popcon.server.spool import Spool
from pyweb_popcon.openpgp import is_armored_message

logger = logging.getLogger(__name__)

CONTENT_TYPE = "application/pgp-encrypted"
MAX_BODY = report.MAX_BYTES
# What a client is told to wait when the spool is full: ingest catching up
# takes minutes, an administrator freeing space longer.
RETRY_AFTER = 600


class Receiver:
    """WSGI application: POST /submit, GET /health, GET / and the page."""

    def __init__(self, spool, output_dir, gauge):
        self.spool = spool
        self.output_dir = output_dir
        self.gauge = gauge

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        method = environ["REQUEST_METHOD"]
        if path == "/submit":
            if method != "POST":
                return _json(start_response, 405, error="use POST",
                             headers=[("Allow", "POST")])
            return self.submit(environ, start_response)
        if method not in ("GET", "HEAD"):
            return _json(start_response, 405, error="use GET",
                         headers=[("Allow", "GET, HEAD")])
        if path == "/health":
            return _json(start_response, 200, status="ok")
        return self.serve_file(path, start_response)

    def submit(self, environ, start_response):
        ctype = environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
        if ctype != CONTENT_TYPE:
            return _json(start_response, 415,
                         error=f"Content-Type must be {CONTENT_TYPE}")
        try:
            length = int(environ.get("CONTENT_LENGTH") or -1)
        except ValueError:
            return _json(start_response, 400, error="bad Content-Length")
        if length > MAX_BODY:
            return _json(start_response, 413,
                         error=f"at most {MAX_BODY} bytes")
        try:
            full = self.gauge.full()
        except OSError:         # no incoming/ to count: nowhere to write
            full = True
        if full:
            return _unavailable(start_response)
        # Bounded even without a Content-Length (chunked): one byte more
        # than allowed is enough to know it is too much.
        body = environ["wsgi.input"].read(MAX_BODY + 1)
        if len(body) > MAX_BODY:
            return _json(start_response, 413,
                         error=f"at most {MAX_BODY} bytes")
        if not is_armored_message(body):
            return _json(start_response, 400,
                         error="not an ASCII-armored OpenPGP message")
        try:
            receipt = self.spool.store(body)
        except OSError as e:
            logger.warning("cannot store a submission: %s", e)
            return _unavailable(start_response)
        self.gauge.add(len(body))
        return _json(start_response, 202, status="ok", receipt=receipt)

    def serve_file(self, path, start_response):
        """A published file, by name; nothing else under OUTPUT_DIR."""
        name = path.lstrip("/") or published.PAGE
        m = published.PATTERN.fullmatch(name)
        try:
            if not m:
                raise FileNotFoundError(name)
            with open(os.path.join(self.output_dir, name), "rb") as f:
                data = f.read()
        except OSError:
            return _json(start_response, 404, error="not found")
        start_response("200 OK", [("Content-Type",
                                   published.MEDIA[m.group(1)]),
                                  ("Content-Length", str(len(data)))])
        return [data]


def _unavailable(start_response):
    return _json(start_response, 503,
                 error="cannot store submissions now; try later",
                 headers=[("Retry-After", str(RETRY_AFTER))])


def _json(start_response, code, headers=(), **body):
    data = (json.dumps(body) + "\n").encode()
    start_response(f"{code} {http.HTTPStatus(code).phrase}",
                   [("Content-Type", "application/json"),
                    ("Content-Length", str(len(data)))] + list(headers))
    return [data]


def application(conf):
    """The Receiver for a loaded configuration."""
    return Receiver(Spool(conf["SPOOL_DIR"]), conf["OUTPUT_DIR"],
                    limits.from_config(conf))


def from_config(path=None):
    """The application for the configuration file at `path`."""
    from pyweb_popcon.server import settings
    return application(settings.load(path or settings.CONFIG))
