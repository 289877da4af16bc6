"""The server's configuration: /etc/pyweb-popcon-server.conf, then
/etc/pyweb-popcon-server.conf.d/*.conf, in the client's syntax."""

import os

from pyweb_popcon.common import conffile
from pyweb_popcon.common.conffile import Key, absolute_path, positive_int

CONFIG = "/etc/pyweb-popcon-server.conf"
IDENTIFIER = "pyweb-popcon-server"
INGEST_USER = "pyweb-popcon-ingest"
RECEIVER_USER = "pyweb-popcon-receiver"


def database_url(text):
    """'' (SQLite under STATE_DIR), sqlite:///ABSOLUTE or postgresql://..."""
    if text == "" or text.startswith(("postgresql://", "postgres://")):
        return text
    if text.startswith("sqlite:///") and len(text) > len("sqlite:///"):
        return text
    raise ValueError("expected sqlite:///ABSOLUTE/PATH or postgresql://...")


def epsilon(text):
    """'' (no noise) or a positive decimal number."""
    if text == "":
        return text
    whole, dot, fraction = text.partition(".")
    if (not whole.isdigit() or (dot and not fraction.isdigit())
            or not float(text) > 0):
        raise ValueError("expected a positive decimal number such as 1 or "
                         "0.5, or nothing for no noise")
    return text


def host_port(text):
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("expected HOST:PORT")
    return text


KEYS = {
    "SPOOL_DIR": Key("/var/spool/pyweb-popcon-server", absolute_path,
                     "incoming/ and quarantine/ for submissions"),
    "STATE_DIR": Key("/var/lib/pyweb-popcon-server", absolute_path,
                     "the GnuPG home (gnupg/) and the SQLite database"),
    "DATABASE_URL": Key("", database_url,
                        "sqlite:///PATH or postgresql://...; empty for "
                        "STATE_DIR/popcon.sqlite3"),
    "OUTPUT_DIR": Key("/var/lib/pyweb-popcon-server/www", absolute_path,
                      "where aggregate writes the published files"),
    "EXPIRE_DAYS": Key("20", positive_int,
                       "forget hosts not heard from for this many days"),
    "MIN_HOSTS": Key("5", positive_int,
                     "smaller counts are folded into \"other\""),
    "NOISE_EPSILON": Key("", epsilon,
                         "differential privacy: noise on every published "
                         "count; empty for none"),
    "LISTEN": Key("127.0.0.1:8080", host_port,
                  "where serve's receiver listens (HOST:PORT)"),
    "GPG_TIMEOUT": Key("300", positive_int,
                       "seconds one gpg decrypting a batch may run before "
                       "ingest kills it"),
    "PAGE_NOTE": Key("", str, "a sentence shown at the top of the "
                     "published page (empty for none)"),
}


def load(path=CONFIG):
    """The effective configuration: defaults, `path`, then `path`.d/*.conf."""
    path = os.path.abspath(path)
    conf = conffile.load(KEYS, path, path + ".d")
    if not conf.values["DATABASE_URL"]:
        conf.values["DATABASE_URL"] = "sqlite://" + os.path.join(
            conf.values["STATE_DIR"], "popcon.sqlite3")
    return conf


def gnupg_home(conf):
    return os.path.join(conf["STATE_DIR"], "gnupg")
