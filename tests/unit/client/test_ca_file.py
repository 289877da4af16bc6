"""CA_FILE: only where the sending unit can read it (elsewhere it is an
error, in test_settings.py)."""

import pytest

from pyweb_popcon.client import settings


def test_empty_by_default_for_the_system_authorities(machine):
    assert settings.load(machine.root)["CA_FILE"] == ""


@pytest.mark.parametrize("path", ["/etc/ssl/certs/popcon-ca.pem",
                                  "/etc/pyweb-popcon.conf.d/ca.pem",
                                  "/usr/share/pyweb-popcon/ca.pem"])
def test_accepted_where_the_upload_unit_sees_it(machine, path):
    machine.config(f'CA_FILE="{path}"\n')
    assert settings.load(machine.root)["CA_FILE"] == path
