"""Shell-style KEY="value" files, read by Python and never sourced.

A main file, then drop-ins (`DIR/*.conf` in name order) that override it
key by key.  Anything that is not a comment, a blank line or a known KEY
with a valid value is a ConfigError that names the file and the line.
Each side brings its own keys (`Key`) and policy; this module knows only
the syntax and the value checkers both sides use.
"""

import os
import re
from dataclasses import dataclass


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


def absolute_path(text):
    if not text.startswith("/"):
        raise ValueError("expected an absolute path")
    return text


def absolute_paths(text):
    return tuple(absolute_path(p) for p in text.split())


def positive_int(text):
    if not text.isdigit() or int(text) < 1:
        raise ValueError("expected a positive whole number")
    return int(text)


# A zone longer than this leaves too little of a query name for the data
# of a DNS submission.
MAX_ZONE = 120
_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


def dns_name(text, limit=253):
    """A DNS name in lower case, without the final dot."""
    name = text.lower().rstrip(".")
    if not 0 < len(name) <= limit or not all(
            _LABEL.fullmatch(label) for label in name.split(".")):
        raise ValueError(f"expected a DNS name of at most {limit} "
                         "characters, such as dns.example.org")
    return name


def dns_zone(text):
    """'' or a DNS zone with room below it for a submission's data."""
    return text and dns_name(text, MAX_ZONE)


def dns_names(text):
    return tuple(dns_name(n) for n in text.split())


@dataclass(frozen=True)
class Key:
    default: str
    check: object
    doc: str


_LINE = re.compile(r"(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)")
_BARE = re.compile(r"[^\s'\"\\$`;&|<>()#]*")


def _unquote(raw):
    """The value of a shell word without expansions, or ValueError.

    Hand-written rather than shlex: shlex would take "$HOME" or a backtick
    as literal text, where a shell would expand it, so the file would mean
    one thing to the program and another to a person who sources it.
    """
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


def load(schema, main, dropins):
    """Defaults from `schema`, then the file `main`, then `dropins`/*.conf."""
    settings = {k: (key.check(key.default), "default")
                for k, key in schema.items()}
    files = [main]
    try:
        files += sorted(e.path for e in os.scandir(dropins)
                        if e.name.endswith(".conf") and e.is_file())
    except FileNotFoundError:
        pass
    except OSError as e:
        raise ConfigError(f"{dropins}: {e.strerror}") from None
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


def quote(value):
    """`value` as a double-quoted word this file format reads back."""
    text = " ".join(value) if isinstance(value, tuple) else str(value)
    for c in '\\"$`':
        text = text.replace(c, "\\" + c)
    return f'"{text}"'
