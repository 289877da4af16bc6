"""What ingest writes about a quarantined submission: one bounded line of
printable UTF-8 for any reason, the same reason codes as the manual, and a
failure of the checks that stays the one submission's."""

import collections
import os
import re

from hypothesis import given, settings, strategies as st

from pyweb_popcon import report
from pyweb_popcon.server import ingest
from pyweb_popcon.server.gpg import Outcome

MAN = os.path.join(os.path.dirname(__file__), "..", "..", "..", "debian",
                   "man", "pyweb-popcon-server.8")


@settings(max_examples=500, database=None)
@given(st.sampled_from(ingest.REASONS),
       st.text(alphabet=st.characters(), max_size=2000))
def test_a_reason_is_one_printable_bounded_line(reason, detail):
    line = ingest.reason_line(reason, detail)
    assert line.isprintable() and len(line) <= ingest.MAX_REASON
    line.encode("utf-8")            # strict: no lone surrogates
    assert line.startswith(reason + ": ")


def test_reason_escapes_as_repr_does():
    assert ingest.reason_line("x", "a\nb\x1b[31m\ud800\u2028é") == \
        "x: a\\nb\\x1b[31m\\ud800\\u2028é"
    long = ingest.reason_line("x", "\x00" * 1000)
    assert long == "x: " + "\\x00" * 123 + "..."    # whole escapes only


def test_reason_codes_are_the_manuals():
    with open(MAN) as f:
        page = f.read()
    section = page.split(".SH QUARANTINE\n")[1].split("\n.SH ")[0]
    assert tuple(re.findall(r"^\.TP\n\.B (\S+)$", section, re.M)) == \
        ingest.REASONS
    summary = collections.Counter({"quarantined " + r: 1
                                   for r in ingest.REASONS})
    assert ingest.describe(summary).endswith(
        f"{len(ingest.REASONS)} quarantined ("
        + ", ".join(f"1 {r}" for r in ingest.REASONS) + ")")


def test_a_bug_in_the_checks_is_that_submissions_alone(monkeypatch):
    """Nothing raised while checking one message escapes it (a mock: a bug
    in report.parse cannot be made to happen on purpose)."""
    def broken(data):
        raise RuntimeError("a bug")
    monkeypatch.setattr(report, "parse", broken)
    assert ingest.classify(Outcome(plaintext=b"{}")) == (
        None, ("invalid-report", "the checks failed on it (RuntimeError)"))
