"""Shell-style KEY="value" configuration, read by Python and never sourced.

The client reads /etc/pyweb-popcon.conf and then /etc/pyweb-popcon.conf.d/
*.conf in name order; a later file overrides an earlier one key by key.
The server uses the same syntax with its own keys.  Anything that is not
a comment, a blank line or a known KEY with a valid value is an error that
names the file and the line.
"""

import os
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

CLIENT_CONFIG = "/etc/pyweb-popcon.conf"
CLIENT_DROPINS = "/etc/pyweb-popcon.conf.d"


class ConfigError(Exception):
    """A configuration file that cannot be used as it is."""


# -- value checkers: each returns the value as the program uses it, or
#    raises ValueError with what was expected.

def yes_no(text):
    if text not in ("yes", "no"):
        raise ValueError("expected yes or no")
    return text == "yes"


def one_of(*choices):
    def check(text):
        if text not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}")
        return text
    return check


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


def absolute_path(text):
    if not text.startswith("/"):
        raise ValueError("expected an absolute path")
    return text


def absolute_paths(text):
    return tuple(absolute_path(p) for p in text.split())


def fingerprints(text):
    prints = tuple(text.upper().split())
    for fp in prints:
        if not re.fullmatch(r"[0-9A-F]{40}", fp):
            raise ValueError(f"{fp!r} is not a 40-digit OpenPGP fingerprint")
    return prints


def positive_int(text):
    if not text.isdigit() or int(text) < 1:
        raise ValueError("expected a positive whole number")
    return int(text)


def host_port(text):
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("expected HOST:PORT")
    return text


@dataclass(frozen=True)
class Key:
    default: str
    check: object
    doc: str


CLIENT_KEYS = {
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

_LINE = re.compile(r"(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)")
_BARE = re.compile(r"[^\s'\"\\$`;&|<>()#]*")


def _unquote(raw):
    """The value of a shell word without expansions, or ValueError."""
    if raw.startswith("'"):
        end = raw.find("'", 1)
        if end < 0:
            raise ValueError("unterminated '")
        return raw[1:end], raw[end + 1:]
    if raw.startswith('"'):
        out, i = [], 1
        while i < len(raw):
            c = raw[i]
            if c == '"':
                return "".join(out), raw[i + 1:]
            if c == "\\" and i + 1 < len(raw) and raw[i + 1] in '"\\$`':
                out.append(raw[i + 1])
                i += 2
                continue
            if c in "$`":
                raise ValueError(f"{c} expansion is not supported: "
                                 "this file is read, not run by a shell")
            out.append(c)
            i += 1
        raise ValueError('unterminated "')
    word = _BARE.match(raw).group()
    return word, raw[len(word):]


@dataclass
class Config:
    values: dict
    files: list          # the files read, in order
    origins: dict        # key -> "file:line" where it was set

    def __getitem__(self, key):
        return self.values[key]


def assignments(lines, path):
    """Yield (key, value, "file:line") from shell-style assignment lines."""
    for number, line in enumerate(lines, 1):
        where = f"{path}:{number}"
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        m = _LINE.fullmatch(stripped)
        if not m:
            raise ConfigError(f"{where}: expected KEY=\"value\", "
                              f"found {stripped[:60]!r}")
        key, raw = m.groups()
        try:
            value, rest = _unquote(raw)
        except ValueError as e:
            raise ConfigError(f"{where}: {key}: {e}") from None
        rest = rest.strip()
        if rest and not rest.startswith("#"):
            raise ConfigError(f"{where}: {key}: unexpected {rest[:20]!r} "
                              "after the value")
        yield key, value, where


def parse_lines(lines, path, schema, into):
    """Apply one file's settings to `into` (key -> (value, origin))."""
    for key, value, where in assignments(lines, path):
        if key not in schema:
            raise ConfigError(f"{where}: unknown key {key} (known: "
                              f"{', '.join(schema)})")
        try:
            into[key] = (schema[key].check(value), where)
        except ValueError as e:
            raise ConfigError(f"{where}: {key}: {e}") from None


def load(root, schema=CLIENT_KEYS, main=CLIENT_CONFIG, dropins=CLIENT_DROPINS):
    """The configuration under `root`: defaults, the main file, drop-ins."""
    settings = {k: (key.check(key.default), "default")
                for k, key in schema.items()}
    files = [root.path(main)]
    try:
        files += sorted(e.path for e in os.scandir(root.path(dropins))
                        if e.name.endswith(".conf") and e.is_file())
    except FileNotFoundError:
        pass
    except OSError as e:
        raise ConfigError(f"{root.path(dropins)}: {e.strerror}") from None
    read = []
    for path in files:
        try:
            with open(path, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"{path}: cannot read: "
                              f"{getattr(e, 'strerror', None) or e}") from None
        parse_lines(lines, path, schema, settings)
        read.append(path)
    return Config({k: v for k, (v, _) in settings.items()}, read,
                  {k: o for k, (_, o) in settings.items()})


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
