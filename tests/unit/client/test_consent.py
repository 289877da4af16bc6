"""Consent follows the report: CONSENTED_FORMAT against the format sent.

The booted system test (tests/system/test_consent.py) upgrades a real
machine to a wider format; these are the client's side and the literal
the maintainer scripts carry.
"""

import dataclasses
import os
import re

import pytest

from pyweb_popcon import report
from pyweb_popcon.client import cli, settings

DEBIAN = os.path.join(os.path.dirname(__file__), "..", "..", "..", "debian")


@pytest.mark.parametrize("script", ["pyweb-popcon.config",
                                    "pyweb-popcon.postinst"])
def test_the_maintainer_scripts_know_the_format_sent(script):
    """They run when the program may not be there (config, before the
    package is unpacked), so they carry the number themselves."""
    with open(os.path.join(DEBIAN, script)) as f:
        found = re.findall(r"^report_format=(\d+)$", f.read(), re.M)
    assert found == [str(report.FORMAT)]


def test_a_yes_without_a_format_agrees_to_format_1(machine):
    """As written before consent was recorded, or by hand."""
    machine.config('PARTICIPATE="yes"\n')
    conf = settings.load(machine.root)
    assert conf["CONSENTED_FORMAT"] == 1
    assert settings.participation(conf, {})[0] is (report.FORMAT == 1)


def test_a_wider_format_sends_nothing_until_agreed(machine, monkeypatch):
    path = machine.config('PARTICIPATE="yes"\nCONSENTED_FORMAT="1"\n')
    monkeypatch.setattr(report, "FORMAT", 2)
    participating, why = settings.participation(settings.load(machine.root),
                                                {})
    assert not participating
    assert why == (f"PARTICIPATE is yes, but for report format 1 ({path}:2)"
                   ", and this version sends format 2: nothing is sent until"
                   " dpkg-reconfigure pyweb-popcon, which says what the "
                   "report holds now, is answered yes again")
    machine.config('CONSENTED_FORMAT="2"\n', name="50-agreed.conf")
    assert settings.participation(settings.load(machine.root), {})[0]


def test_status_says_why_and_collect_sends_nothing(machine, monkeypatch,
                                                   capsys):
    machine.config('PARTICIPATE="yes"\n')
    monkeypatch.setattr(report, "FORMAT", 2)
    assert cli.main(["--root", machine.top, "status"]) == 0
    assert "Participating: no (PARTICIPATE is yes, but for report format 1 " \
        "(default)" in capsys.readouterr().out
    assert cli.main(["--root", machine.top, "collect"]) == 0
    assert not os.path.exists(machine.path("/var/lib/pyweb-popcon"))


@pytest.mark.parametrize("value", ["0", "two", ""])
def test_bad_values_name_the_line(machine, value):
    from pyweb_popcon.common.conffile import ConfigError
    path = machine.config(f'CONSENTED_FORMAT="{value}"\n')
    with pytest.raises(ConfigError, match=f"{path}:1: CONSENTED_FORMAT: "
                                          "expected a positive whole number"):
        settings.load(machine.root)


# What the question says of each field a report holds: a field added to
# the report must be named here, and so in the question.
QUESTION_NAMES = {
    "host_id": "a random ID for this machine",
    "date": "the date",
    "client": "the version of pyweb-popcon",
    "os": "the operating system and release",
    "virt": "whether this is a virtual machine or container",
    "age": "how many weeks ago this machine's ID was made",
    "pythons": "the installed Python versions",
    "frameworks": "the names and versions of the web frameworks",
    "format": "the report format",
}


def test_the_question_names_every_field_of_the_report():
    with open(os.path.join(DEBIAN, "pyweb-popcon.templates")) as f:
        question = f.read().split("\n\n")[0]
    text = " ".join(line.strip() for line in question.splitlines()[4:])
    fields = [f.name for f in dataclasses.fields(report.Report)]
    assert sorted(QUESTION_NAMES) == sorted(fields)
    for field in fields:
        assert QUESTION_NAMES[field] in text, field
