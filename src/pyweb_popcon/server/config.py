"""The server's configuration: /etc/pyweb-popcon-server.conf, client syntax."""

import os

from pyweb_popcon import config
from pyweb_popcon.root import Root

SERVER_CONFIG = "/etc/pyweb-popcon-server.conf"
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


SERVER_KEYS = {
    "SPOOL_DIR": config.Key("/var/spool/pyweb-popcon-server",
                            config.absolute_path,
                            "incoming/ and quarantine/ for submissions"),
    "STATE_DIR": config.Key("/var/lib/pyweb-popcon-server",
                            config.absolute_path,
                            "the GnuPG home (gnupg/) and the SQLite database"),
    "DATABASE_URL": config.Key("", database_url,
                               "sqlite:///PATH or postgresql://...; empty "
                               "for STATE_DIR/popcon.sqlite3"),
    "OUTPUT_DIR": config.Key("/var/lib/pyweb-popcon-server/www",
                             config.absolute_path,
                             "where aggregate writes the published files"),
    "EXPIRE_DAYS": config.Key("20", config.positive_int,
                              "forget hosts not heard from for this many days"),
    "MIN_HOSTS": config.Key("5", config.positive_int,
                            "smaller counts are folded into \"other\""),
    "LISTEN": config.Key("127.0.0.1:8080", config.host_port,
                         "where serve's receiver listens (HOST:PORT)"),
}


def load(path=SERVER_CONFIG):
    """The effective configuration: defaults, `path`, then `path`.d/*.conf."""
    conf = config.load(Root("/"), SERVER_KEYS, os.path.abspath(path),
                       os.path.abspath(path) + ".d")
    if not conf.values["DATABASE_URL"]:
        conf.values["DATABASE_URL"] = "sqlite://" + os.path.join(
            conf.values["STATE_DIR"], "popcon.sqlite3")
    return conf


def gnupg_home(conf):
    return os.path.join(conf["STATE_DIR"], "gnupg")


def quote(value):
    """`value` as a double-quoted word this file format reads back."""
    text = " ".join(value) if isinstance(value, tuple) else str(value)
    for c in '\\"$`':
        text = text.replace(c, "\\" + c)
    return f'"{text}"'
