"""The server's configuration: /etc/pyweb-popcon-server.conf, then
/etc/pyweb-popcon-server.conf.d/*.conf, in the client's syntax."""

import os
import re
import stat

from pyweb_popcon.common import conffile
from pyweb_popcon.common.conffile import Key, absolute_path, dns_names, \
    dns_zone, positive_int
from pyweb_popcon.server.spool import Spool

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


def optional_path(text):
    return text and absolute_path(text)


def host_port(text):
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("expected HOST:PORT")
    return text


_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def size(text):
    """Bytes, with an optional K, M, G or T (powers of 1024): 512M."""
    number, unit = text[:-1], text[-1:].upper()
    if unit.isdigit():
        number, unit = text, ""
    if not number.isdigit() or unit not in _UNITS:
        raise ValueError("expected a size in bytes, or with K, M, G or T "
                         "(512M, 2G)")
    return int(number) * _UNITS[unit]


KEYS = {
    "SPOOL_DIR": Key("/var/spool/pyweb-popcon-server", absolute_path,
                     f"{Spool.INCOMING}/, {Spool.TMP}/ and "
                     f"{Spool.QUARANTINE}/ for submissions"),
    "STATE_DIR": Key("/var/lib/pyweb-popcon-server", absolute_path,
                     "the GnuPG home (gnupg/) and the SQLite database"),
    "DATABASE_URL": Key("", database_url,
                        "sqlite:///PATH or postgresql://...; empty for "
                        "STATE_DIR/popcon.sqlite3"),
    "DATABASE_PASSWORD_FILE": Key("", optional_path,
                                  "PostgreSQL's password, if it needs one: "
                                  "a file others cannot read"),
    "OUTPUT_DIR": Key("/var/lib/pyweb-popcon-server/www", absolute_path,
                      "where aggregate writes the published files"),
    "EXPIRE_DAYS": Key("20", positive_int,
                       "forget hosts not heard from for this many days"),
    "MIN_HOSTS": Key("5", positive_int,
                     "smaller counts are folded into \"other\""),
    "NOISE_EPSILON": Key("", epsilon,
                         "differential privacy: noise on every published "
                         "count; empty for none"),
    "SPOOL_MAX_FILES": Key("100000", positive_int,
                           "the receiver answers 503 while "
                           f"{Spool.INCOMING}/ holds this many submissions"),
    "SPOOL_MAX_BYTES": Key("1G", size,
                           "... or this many bytes (K, M, G: powers of "
                           "1024)"),
    "SPOOL_MIN_FREE": Key("1G", size,
                          "... or its file system has less free space"),
    "LISTEN": Key("127.0.0.1:8080", host_port,
                  "where serve's receiver listens (HOST:PORT)"),
    "GPG_TIMEOUT": Key("300", positive_int,
                       "seconds one gpg decrypting a batch may run before "
                       "ingest kills it"),
    "PAGE_NOTE": Key("", str, "a sentence shown at the top of the "
                     "published page (empty for none)"),
    "DNS_ZONE": Key("", dns_zone,
                    "the zone PowerDNS answers submissions over DNS for; "
                    "empty for none"),
    "DNS_NAMESERVERS": Key("", dns_names,
                           "the zone's name servers, as its NS records name "
                           "them"),
    "DNS_TIMEOUT": Key("600", positive_int,
                       "seconds an incomplete DNS submission is kept"),
    "DNS_MAX_PENDING": Key("10000", positive_int,
                           "incomplete DNS submissions held at most; more "
                           "are answered \"busy\""),
    "DNS_MAX_PENDING_BYTES": Key("64M", size,
                                 "... or this many bytes of them (K, M, "
                                 "G)"),
}


def load(path=CONFIG):
    """The effective configuration: defaults, `path`, then `path`.d/*.conf."""
    path = os.path.abspath(path)
    conf = conffile.load(KEYS, path, path + ".d")
    if not conf.values["DATABASE_URL"]:
        conf.values["DATABASE_URL"] = "sqlite://" + os.path.join(
            conf.values["STATE_DIR"], "popcon.sqlite3")
    return conf


# The name of the systemd credential (LoadCredential=) with the password.
CREDENTIAL = "database-password"
# As libpq reads a URL: the userinfo ends at the first "@" before any "/".
_URL_PASSWORD = re.compile(r"(://[^/@:]*:)[^/@]*(@)|([?&]password=)[^&]*")


def shown(key, value):
    """A setting's value as `config` prints it: never a password."""
    if key == "DATABASE_URL":
        return _URL_PASSWORD.sub(
            lambda m: f"{m[1] or m[3]}********{m[2] or ''}", value)
    return value


def database_password(conf):
    """PostgreSQL's password: the systemd credential, else the file
    DATABASE_PASSWORD_FILE; None when neither is given.  Read before a
    command run by root becomes the unit's user, so a root-only file
    serves commands run by hand."""
    credentials = os.environ.get("CREDENTIALS_DIRECTORY")
    path = credentials and os.path.join(credentials, CREDENTIAL)
    if not (path and os.path.exists(path)):
        path = conf["DATABASE_PASSWORD_FILE"]
        if not path:
            return None
        try:
            mode = os.stat(path).st_mode
        except OSError as e:
            raise conffile.ConfigError(
                f"DATABASE_PASSWORD_FILE {path}: {e.strerror}") from None
        if mode & stat.S_IROTH:
            raise conffile.ConfigError(
                f"DATABASE_PASSWORD_FILE {path} is readable by everyone: "
                f"chmod o-rwx {path}")
    try:
        with open(path, encoding="utf-8") as f:
            return f.readline().rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as e:
        raise conffile.ConfigError(
            f"{path}: cannot read the database password: "
            f"{getattr(e, 'strerror', None) or e}") from None


def gnupg_home(conf):
    return os.path.join(conf["STATE_DIR"], "gnupg")


# The unit that runs each command, and the settings naming what it writes:
# under the unit's ProtectSystem=strict everything else is read-only (the
# package's units allow /var/lib/pyweb-popcon-server and
# /var/spool/pyweb-popcon-server, or the spool only).
UNITS = {"serve": "pyweb-popcon-receiver.service",
         "dns-backend": "pyweb-popcon-dns.service",
         "ingest": "pyweb-popcon-ingest.service",
         "expire": "pyweb-popcon-expire.service",
         "aggregate": "pyweb-popcon-aggregate.service"}
WRITES = {"serve": ("SPOOL_DIR",), "dns-backend": ("SPOOL_DIR",),
          "ingest": ("SPOOL_DIR", "STATE_DIR", "DATABASE_URL"),
          "expire": ("SPOOL_DIR", "STATE_DIR", "DATABASE_URL"),
          "aggregate": ("STATE_DIR", "OUTPUT_DIR", "DATABASE_URL")}
# The nginx site the package ships, which serves OUTPUT_DIR once enabled.
NGINX_SITE = "/etc/nginx/sites-enabled/pyweb-popcon-server"


def _directory(conf, key):
    """The directory `key` names (the SQLite database's, for
    DATABASE_URL); None for a PostgreSQL database."""
    if key != "DATABASE_URL":
        return conf[key]
    url = conf[key]
    return os.path.dirname(url[len("sqlite://"):]) \
        if url.startswith("sqlite://") else None


def check_writable(conf, command):
    """ConfigError when a directory `command` writes is on a read-only
    file system: what a unit's ReadWritePaths= leaves out is, and the
    command would fail on it half-way, with EROFS."""
    unit = UNITS.get(command)
    for key in WRITES.get(command, ()):
        directory = _directory(conf, key)
        if directory is None:
            continue
        existing = directory
        while not os.path.exists(existing):
            existing = os.path.dirname(existing)
        if os.statvfs(existing).f_flag & os.ST_RDONLY:
            raise conffile.ConfigError(
                f"{key}: {directory} is on a read-only file system here; "
                f"under systemd, {unit}'s ReadWritePaths= leaves it out: "
                f"add it (systemctl edit {unit}: ReadWritePaths={directory})"
                f", or set {key} back to where the unit writes")


def check_served(conf, site=NGINX_SITE):
    """ConfigError when the enabled nginx site serves another directory
    than OUTPUT_DIR: aggregate would publish where no one looks."""
    try:
        with open(site, encoding="utf-8") as f:
            roots = re.findall(r"^\s*root\s+([^;\s]+)\s*;", f.read(), re.M)
    except FileNotFoundError:
        return
    output = os.path.normpath(conf["OUTPUT_DIR"])
    for root in roots:
        if os.path.normpath(root) != output:
            raise conffile.ConfigError(
                f"OUTPUT_DIR is {output}, but the nginx site {site} serves "
                f"{root}: set its root to {output} (and reload nginx), or "
                f"OUTPUT_DIR back to {root}")
