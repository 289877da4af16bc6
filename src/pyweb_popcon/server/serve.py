"""`serve`: the receiver under gunicorn, configured for privacy.

gunicorn's access log is off, and its error log stays at "warning", the
level below which it would mention a client's address (invalid requests
are logged at debug with ip=...).
"""

import os

from gunicorn.app.base import BaseApplication

from pyweb_popcon.server import receive


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
    }


def run(conf, workers=None):
    _Gunicorn(receive.application(conf), options(conf, workers)).run()
