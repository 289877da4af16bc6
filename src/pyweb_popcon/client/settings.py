"""The client's configuration and its policy: whether to take part.

/etc/pyweb-popcon.conf, then /etc/pyweb-popcon.conf.d/*.conf, under the
machine's Root.  DO_NOT_TRACK=1 in the environment overrides everything.
"""

import os
import re
from urllib.parse import urlsplit

from pyweb_popcon import report
from pyweb_popcon.common import conffile
from pyweb_popcon.common.conffile import ConfigError, Key, absolute_path, \
    absolute_paths, MAX_ZONE, dns_name, one_of, positive_int, yes_no
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


# What the upload unit (systemd/pyweb-popcon.service) lets it read of the
# system besides its own configuration: a CA file anywhere else would not
# be there when the report is sent.
CA_PLACES = ("/etc/ssl/", "/etc/pyweb-popcon.conf.d/", "/usr/share/")


def ca_file(text):
    """'' (the system's certificate authorities) or a file in CA_PLACES."""
    if text == "":
        return ""
    if not os.path.normpath(absolute_path(text)).startswith(CA_PLACES):
        raise ValueError(f"expected a file under {', '.join(CA_PLACES[:-1])}"
                         f" or {CA_PLACES[-1]} "
                         "(the upload unit sees nothing else of the system)")
    return text


def zone(text):
    return dns_name(text, MAX_ZONE)


KEYS = {
    "PARTICIPATE": Key("no", yes_no,
                       "yes to send a weekly report, no not to (debconf)"),
    # 1 when unset: the only format there was before this was recorded.
    "CONSENTED_FORMAT": Key("1", positive_int,
                            "the report format PARTICIPATE agreed to "
                            "(debconf)"),
    "SUBMIT_URL": Key("https://pyweb-popcon.debian.net/submit",
                      url("https", "http"), "where reports are sent"),
    "TRANSPORT": Key("https", one_of("https", "dns"),
                     "https: POST to SUBMIT_URL; dns: queries under "
                     "SUBMIT_ZONE through the system's resolver"),
    "SUBMIT_ZONE": Key("dns.pyweb-popcon.debian.net", zone,
                       "the server's DNS zone, for TRANSPORT=\"dns\""),
    "KEYRING": Key("/usr/share/pyweb-popcon/server-keys.asc", absolute_path,
                   "the server's armored public key(s)"),
    "KEY_FINGERPRINTS": Key("", fingerprints,
                            "fingerprints reports are encrypted to"),
    "HTTP_PROXY": Key("", url("http", "https", empty=True),
                      "proxy for submissions (else the environment's)"),
    "CA_FILE": Key("", ca_file,
                   "certificate authorities (PEM) trusted for an https "
                   "SUBMIT_URL instead of the system's"),
    "USE_TOR": Key("no", one_of("no", "yes", "maybe"),
                   "send through Tor at 127.0.0.1:9050"),
    "SCAN_VENVS": Key("yes", yes_no,
                      "look for environments and Python prefixes"),
    "SCAN_PATHS": Key("/srv /opt /var/www", absolute_paths,
                      "where to look for environments (not in homes)"),
    "SCAN_HOMES": Key("no", yes_no,
                      "look in every home, /home/* and /root, too"),
    "SCAN_EXCLUDE": Key("", absolute_paths,
                        "directories the scan never enters"),
    "REPORT_USED": Key("yes", yes_no,
                       "no sends \"used\": null (no access-time vote)"),
}


def load(root):
    """The configuration of the machine under `root`."""
    config = conffile.load(KEYS, root.path(paths.CONFIG),
                           root.path(paths.DROPINS))
    _homes_chosen_once(config)
    return config


def _homes_chosen_once(config):
    """Homes are one choice, SCAN_HOMES: a scan path in a home without it
    is an error, not a home half looked at."""
    if config["SCAN_HOMES"]:
        return
    for path in config["SCAN_PATHS"]:
        if any(os.path.normpath(path) == home or path.startswith(home + "/")
               for home in paths.HOMES):
            raise ConfigError(
                f"{config.origins['SCAN_PATHS']}: SCAN_PATHS: {path} is in "
                "the home directories, which are looked at only with "
                'SCAN_HOMES="yes" (all of /home/* and /root)')


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
    # Consent is to what a report sends: a wider one needs a yes of its own.
    if config["CONSENTED_FORMAT"] < report.FORMAT:
        return False, (
            f"PARTICIPATE is yes, but for report format "
            f"{config['CONSENTED_FORMAT']} "
            f"({config.origins['CONSENTED_FORMAT']}), and this version sends "
            f"format {report.FORMAT}: nothing is sent until "
            "dpkg-reconfigure pyweb-popcon, which says what the report "
            "holds now, is answered yes again")
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


def destination(config):
    """Where the configured transport sends, for a person."""
    if config["TRANSPORT"] == "dns":
        return f"the DNS zone {config['SUBMIT_ZONE']}"
    return config["SUBMIT_URL"]
