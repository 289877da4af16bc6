"""What ingest writes about a quarantined submission: one bounded line of
printable UTF-8 for any reason, the same reason codes as the manual, and a
failure of the checks that stays the one submission's."""

import collections
import os
import re
import shutil
import subprocess
import tempfile

import pytest
from hypothesis import given, settings, strategies as st

from pyweb_popcon import report
from pyweb_popcon.server import spool
from pyweb_popcon.server.keyholder import ingest
from pyweb_popcon.server.keyholder.judge import Outcome

TOP = os.path.join(os.path.dirname(__file__), "..", "..", "..")
MAN = os.path.join(TOP, "debian", "man", "pyweb-popcon-server.8")
SRC = os.path.abspath(os.path.join(TOP, "src"))


@settings(max_examples=500, database=None)
@given(st.sampled_from(ingest.REASONS),
       st.text(alphabet=st.characters(), max_size=2000))
def test_a_reason_is_one_printable_bounded_line(reason, detail):
    line = spool.reason_line(reason, detail)
    assert line.isprintable() and len(line) <= spool.MAX_REASON
    line.encode("utf-8")            # strict: no lone surrogates
    assert line.startswith(reason + ": ")


def test_reason_escapes_as_repr_does():
    assert spool.reason_line("x", "a\nb\x1b[31m\ud800\u2028é") == \
        "x: a\\nb\\x1b[31m\\ud800\\u2028é"
    long = spool.reason_line("x", "\x00" * 1000)
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


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to be nobody")
def test_a_file_ingest_may_not_read_is_not_called_garbage():
    """gpg says nothing of a file it cannot open, as of an empty one."""
    top = tempfile.mkdtemp()
    try:
        os.chmod(top, 0o755)
        with open(os.path.join(top, "0.asc"), "wb") as f:
            f.write(b"root's alone")
        os.chmod(os.path.join(top, "0.asc"), 0o600)
        code = ("import sys; "
                "from pyweb_popcon.server.keyholder.judge import judge; "
                "o = judge([], sys.argv[1], set()); print(o.reason + ': ' + "
                "o.detail)")
        judged = subprocess.run(
            ["/usr/bin/python3", "-c", code, os.path.join(top, "0")],
            user="nobody", env={"PYTHONPATH": SRC}, capture_output=True,
            text=True, check=True).stdout
        assert judged == "undecryptable: ingest may not read it\n"
    finally:
        shutil.rmtree(top)
