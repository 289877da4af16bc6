"""The client's configuration and its policy: whether to take part.

/etc/pyweb-popcon.conf, then /etc/pyweb-popcon.conf.d/*.conf, under the
machine's Root.  DO_NOT_TRACK=1 in the environment overrides everything.
"""

import os
import re
from urllib.parse import urlsplit

from pyweb_popcon.common import conffile
from pyweb_popcon.common.conffile import Key, absolute_path, absolute_paths, \
    one_of, yes_no
from pyweb_popcon.client import paths

IDENTIFIER = "pyweb-popcon"        # in the journal: journalctl -t
# The exit status of a machine that takes part but has no server to send
# to yet: LSB's "program is not configured" (systemd shows 6/NOTCONFIGURED).
# The units list it in SuccessExitStatus=: a missing server is not a
# failure of the machine, and the unit is not shown as failed every week.
NOT_CONFIGURED = 6


def url(*schemes, empty=False):
    def check(text):
        if empty and text == "":
            return ""
        parts = urlsplit(text)
        try:
            parts.port          # raises for a port out of range
        except ValueError:
            parts = None
        if not parts or parts.scheme not in schemes or not parts.hostname:
            raise ValueError(f"expected a {' or '.join(schemes)} URL")
        return text
    return check


def fingerprints(text):
    prints = tuple(text.upper().split())
    for fp in prints:
        if not re.fullmatch(r"[0-9A-F]{40}", fp):
            raise ValueError(f"{fp!r} is not a 40-digit OpenPGP fingerprint")
    return prints


KEYS = {
    "PARTICIPATE": Key("no", yes_no,
                       "yes to send a weekly report, no not to (debconf)"),
    "SUBMIT_URL": Key("https://pyweb-popcon.debian.net/submit",
                      url("https", "http"), "where reports are sent"),
    "KEYRING": Key("/usr/share/pyweb-popcon/server-keys.asc", absolute_path,
                   "the server's armored public key(s)"),
    "KEY_FINGERPRINTS": Key("", fingerprints,
                            "fingerprints reports are encrypted to"),
    "HTTP_PROXY": Key("", url("http", "https", empty=True),
                      "proxy for submissions (else the environment's)"),
    "USE_TOR": Key("no", one_of("no", "yes", "maybe"),
                   "send through Tor at 127.0.0.1:9050"),
    "SCAN_VENVS": Key("yes", yes_no, "look for virtual environments"),
    "SCAN_PATHS": Key("/srv /opt /var/www", absolute_paths,
                      "where to look for virtual environments"),
}


def load(root):
    """The configuration of the machine under `root`."""
    return conffile.load(KEYS, root.path(paths.CONFIG),
                         root.path(paths.DROPINS))


def do_not_track(environ=os.environ):
    """True when the environment asks for no tracking (DO_NOT_TRACK=1)."""
    return environ.get("DO_NOT_TRACK", "").strip().lower() not in ("", "0",
                                                                   "false",
                                                                   "no")


def participation(config, environ=os.environ):
    """(participating, reason) for this configuration and environment."""
    if do_not_track(environ):
        return False, "DO_NOT_TRACK is set in the environment"
    if not config["PARTICIPATE"]:
        return False, (f"PARTICIPATE is no ({config.origins['PARTICIPATE']}); "
                       "dpkg-reconfigure pyweb-popcon changes it")
    return True, f"PARTICIPATE is yes ({config.origins['PARTICIPATE']})"


def server_missing(config):
    """Why there is no server to send reports to, or None.

    Until a distribution builds the package with its server's key and URL
    (debian/rules: SERVER_KEYS, SERVER_CONF), KEY_FINGERPRINTS is empty.
    """
    if config["KEY_FINGERPRINTS"]:
        return None
    return ("KEY_FINGERPRINTS is empty, so there is no key to encrypt "
            "reports to; set SUBMIT_URL, KEYRING and KEY_FINGERPRINTS in "
            f"a drop-in such as {paths.DROPINS}/"
            "server.conf (see pyweb-popcon.conf(5))")
