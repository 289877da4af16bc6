"""Configuration: shell-style lines read, never run; errors name file:line."""

import os

import pytest

from fakemachine import CONSENT
from pyweb_popcon.client import settings
from pyweb_popcon.common.conffile import ConfigError


def test_defaults_without_any_file(machine):
    conf = settings.load(machine.root)
    assert conf.files == []
    assert conf["PARTICIPATE"] is False
    assert conf["SCAN_VENVS"] is True
    assert conf["SCAN_PATHS"] == ("/srv", "/opt", "/var/www")
    assert conf["USE_TOR"] == "no"
    assert conf["TRANSPORT"] == "https"
    assert conf.origins["PARTICIPATE"] == "default"


def test_quoting_forms_and_comments(machine):
    path = machine.config('''\
        # written by debconf
        PARTICIPATE="yes"   # opted in
        SUBMIT_URL='http://127.0.0.1:8080/submit'
        USE_TOR=maybe
        export SCAN_VENVS="no"

        SCAN_PATHS="/srv /home"
        SCAN_HOMES="yes"
        KEY_FINGERPRINTS="0123456789abcdef0123456789ABCDEF01234567"
        HTTP_PROXY=""
    ''')
    conf = settings.load(machine.root)
    assert conf.files == [path]
    assert conf["PARTICIPATE"] is True
    assert conf["SUBMIT_URL"] == "http://127.0.0.1:8080/submit"
    assert conf["USE_TOR"] == "maybe"
    assert conf["SCAN_VENVS"] is False
    assert conf["SCAN_PATHS"] == ("/srv", "/home")
    assert conf["KEY_FINGERPRINTS"] == ("0123456789ABCDEF0123456789ABCDEF"
                                        "01234567",)
    assert conf.origins["PARTICIPATE"] == f"{path}:2"


def test_dropins_override_in_name_order(machine):
    machine.config('PARTICIPATE="yes"\nSCAN_PATHS="/srv"\n')
    b = machine.config('SCAN_PATHS="/opt"\n', name="20-b.conf")
    a = machine.config('SCAN_PATHS="/var/www"\nUSE_TOR="yes"\n',
                       name="10-a.conf")
    machine.config('SCAN_PATHS="/ignored"\n', name="30-c.conf.dpkg-old")
    conf = settings.load(machine.root)
    assert conf.files == [machine.path("/etc/pyweb-popcon.conf"), a, b]
    assert conf["SCAN_PATHS"] == ("/opt",)
    assert conf["USE_TOR"] == "yes"
    assert conf["PARTICIPATE"] is True


@pytest.mark.parametrize("line,message", [
    ('FOO="bar"', "unknown key FOO"),
    ('PARTICIPATE="maybe"', "PARTICIPATE: expected yes or no"),
    ('PARTICIPATE=', "PARTICIPATE: expected yes or no"),
    ('USE_TOR="always"', "USE_TOR: expected one of no, yes, maybe"),
    ('SUBMIT_URL="ftp://example.org/"', "SUBMIT_URL: expected a https or "
                                         "http URL"),
    ('HTTP_PROXY="http://proxy:99999"', "HTTP_PROXY: expected a http or "
                                        "https URL"),
    ('SUBMIT_URL="https://x:port/"', "SUBMIT_URL: expected a https or http"),
    ('CA_FILE="ca.pem"', "CA_FILE: expected an absolute path"),
    ('CA_FILE="/root/ca.pem"', "CA_FILE: expected a file under /etc/ssl/, "
                               "/etc/pyweb-popcon.conf.d/ or /usr/share/"),
    ('CA_FILE="/usr/local/share/ca-certificates/ca.crt"',
     "CA_FILE: expected a file under"),
    ('CA_FILE="/etc/ssl/../shadow"', "CA_FILE: expected a file under"),
    ('TRANSPORT="smtp"', "TRANSPORT: expected one of https, dns"),
    ('SUBMIT_ZONE="dns..example.org"', "SUBMIT_ZONE: expected a DNS name"),
    ('SUBMIT_ZONE="_x.example.org"', "SUBMIT_ZONE: expected a DNS name"),
    (f'SUBMIT_ZONE="{"a" * 64}.org"', "SUBMIT_ZONE: expected a DNS name"),
    (f'SUBMIT_ZONE="{"a." * 60}org"', "SUBMIT_ZONE: expected a DNS name "
                                      "of at most 120 characters"),
    ('SCAN_PATHS="srv"', "SCAN_PATHS: expected an absolute path"),
    ('KEY_FINGERPRINTS="DEADBEEF"', "KEY_FINGERPRINTS: 'DEADBEEF' is not a "
                                    "40-digit"),
    ('SCAN_PATHS="$HOME/srv"', "SCAN_PATHS: $ expansion is not supported"),
    ('SCAN_PATHS="`id`"', "SCAN_PATHS: ` expansion is not supported"),
    ('SCAN_PATHS=$(id)', "SCAN_PATHS: unexpected '$(id)'"),
    ('PARTICIPATE="yes', 'PARTICIPATE: unterminated "'),
    ("PARTICIPATE='yes", "PARTICIPATE: unterminated '"),
    ('PARTICIPATE="yes" no', "PARTICIPATE: unexpected 'no'"),
    ('PARTICIPATE="yes"; rm -rf /', "PARTICIPATE: unexpected '; rm -rf /'"),
    ('this is not an assignment', "expected KEY=\"value\""),
    ('PARTICIPATE = "yes"', "expected KEY=\"value\""),
])
def test_errors_name_file_and_line(machine, line, message):
    path = machine.config(f'# comment\n\nSCAN_VENVS="yes"\n{line}\n')
    with pytest.raises(ConfigError) as e:
        settings.load(machine.root)
    assert str(e.value).startswith(f"{path}:4: {message}")


def test_error_in_a_dropin_names_the_dropin(machine):
    machine.config('PARTICIPATE="yes"\n')
    path = machine.config('USE_TOR="perhaps"\n', name="50-vendor.conf")
    with pytest.raises(ConfigError, match=f"^{path}:1: USE_TOR"):
        settings.load(machine.root)


def test_values_are_never_executed(machine, tmp_path):
    marker = tmp_path / "ran"
    machine.config(f"SCAN_PATHS='$(touch {marker})'\n")
    with pytest.raises(ConfigError, match="expected an absolute path"):
        settings.load(machine.root)
    assert not marker.exists()


def test_unreadable_file_is_an_error(machine):
    path = machine.path("/etc/pyweb-popcon.conf")
    os.makedirs(path)       # unreadable as a file, even for root
    with pytest.raises(ConfigError, match=f"^{path}: cannot read: Is a dir"):
        settings.load(machine.root)


@pytest.mark.parametrize("value,tracked", [
    ("1", False), ("true", False), ("yes", False),
    ("", True), ("0", True), ("false", True)])
def test_do_not_track(machine, value, tracked):
    machine.config('PARTICIPATE="yes"\n' + CONSENT)
    conf = settings.load(machine.root)
    participating, why = settings.participation(conf, {"DO_NOT_TRACK": value})
    assert participating is tracked
    if not tracked:
        assert "DO_NOT_TRACK" in why


def test_participation_reason_points_at_the_line(machine):
    path = machine.config('PARTICIPATE="no"\n')
    participating, why = settings.participation(settings.load(machine.root), {})
    assert not participating
    assert f"{path}:1" in why and "dpkg-reconfigure" in why
