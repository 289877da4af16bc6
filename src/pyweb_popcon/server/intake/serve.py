"""`serve`: the receiver under gunicorn, configured for privacy.

gunicorn's access log is off, and its error log stays at "warning", the
level below which it would mention a client's address (invalid requests
are logged at debug with ip=...).  It trusts no forwarding header from
anyone: the receiver has no use for an address, and the nginx site in
front passes none on.  It is meant to listen on loopback behind that site
(TLS, complete requests only, slow clients held off): on any other address
it says so in its log.
"""

import ipaddress
import logging
import os

from gunicorn.app.base import BaseApplication

from pyweb_popcon.server.intake import receive

logger = logging.getLogger(__name__)


class _Gunicorn(BaseApplication):
    def __init__(self, app, options):
        self.app, self.options = app, options
        super().__init__()

    def load_config(self):
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        return self.app


def options(conf, workers=None):
    """gunicorn settings for LISTEN, with nothing that logs addresses."""
    return {
        "bind": [conf["LISTEN"]],
        # Threads keep connections alive and overlap the fsyncs.
        "worker_class": "gthread",
        "workers": workers or 2 * len(os.sched_getaffinity(0)),
        "threads": 4,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
        "proc_name": "pyweb-popcon-receiver",
        "timeout": 30,
        # A submission takes milliseconds: do not wait long on a restart.
        "graceful_timeout": 10,
        "keepalive": 5,
        # No peer may set the scheme (X-Forwarded-Proto and friends) or an
        # address (the PROXY protocol): gunicorn's defaults trust
        # 127.0.0.1, which is where nginx connects from.
        "forwarded_allow_ips": "",
        "secure_scheme_headers": {},
        "proxy_protocol": False,
        "proxy_allow_ips": "",
    }


def is_loopback(listen):
    """True when LISTEN (HOST:PORT) is on a loopback address."""
    host = listen.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:      # a name: it may resolve to anything
        return False


def run(conf, workers=None):
    if not is_loopback(conf["LISTEN"]):
        logger.warning(
            "LISTEN=%s is not a loopback address: the receiver expects a "
            "TLS proxy in front of it (the nginx site "
            "/etc/nginx/sites-available/pyweb-popcon-server), which holds "
            "slow clients off and passes on complete requests only",
            conf["LISTEN"])
    _Gunicorn(receive.application(conf), options(conf, workers)).run()
