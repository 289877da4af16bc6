"""Submission over DNS in a booted Debian 12, through the shipped units
(issue 13): PowerDNS's instance pdns@pyweb-popcon with the shipped
configuration starts the handler's socket; unbound, the machine's
resolver, has the zone as a stub; the client's upload unit, sandboxed as
shipped, sends the report as DNS queries; ingest stores it.  Neither the
client's address nor the resolver's is in any file of the server or its
units' journal.

The container shares the host's network: every daemon here listens on
loopback addresses of the test's own (127.53.x.y), and none starts before
it is configured so (policy-rc.d while the packages go in).
"""

import random
import re

import dns_stack
from booted import (DATABASE, SPOOL, box, built, log,  # noqa: F401
                    places_with, reconfigure, skip_unless_able)

pytestmark = skip_unless_able
ZONE = dns_stack.ZONE
NET = f"127.53.{random.randrange(1, 255)}"
PDNS, UNBOUND, OUTGOING = f"{NET}.1", f"{NET}.2", f"{NET}.3"
CLIENT = dns_stack.CLIENT    # loopback chooses it towards unbound
UNBOUND_CONF = dns_stack.unbound_conf(UNBOUND, OUTGOING, PDNS)


def test_install_with_powerdns_and_unbound(box):
    box.sh("printf '#!/bin/sh\\nexit 101\\n' >/usr/sbin/policy-rc.d\n"
           "chmod +x /usr/sbin/policy-rc.d")
    box.sh("apt-get install -y -q --no-install-recommends "
           "/srv/debs/python3-pyweb-popcon_*_all.deb "
           "/srv/debs/pyweb-popcon-server_*_all.deb "
           "/srv/debs/pyweb-popcon_*_all.deb "
           "pdns-server pdns-backend-remote unbound", timeout=900)
    box.sh("rm /usr/sbin/policy-rc.d\n"
           "systemctl disable -q --now pdns.service unbound.service "
           "pyweb-popcon-receiver.service")
    log("server, client, PowerDNS and unbound installed")
    # Installed, the DNS receiver waits for PowerDNS's instance: nothing
    # of it runs.
    for unit in ("pyweb-popcon-dns.socket", "pyweb-popcon-dns.service",
                 "pdns@pyweb-popcon.service"):
        assert box.out(f"systemctl is-active {unit}", check=False).strip() \
            == "inactive", unit


def test_the_operator_sets_up_the_zone(box):
    box.sh("mkdir -p /etc/pyweb-popcon-server.conf.d\n"
           "cat >/etc/pyweb-popcon-server.conf.d/system-test.conf <<'END'\n"
           'MIN_HOSTS="1"\n'
           f'DNS_ZONE="{ZONE}"\n'
           f'DNS_NAMESERVERS="ns1.{ZONE}"\n'
           "END")
    # Port 53 of this test's own address, not of every address (the
    # container shares the host's network).
    box.sh("sed -i 's/^local-address=.*/local-address=" + PDNS + "/' "
           "/etc/powerdns/pdns-pyweb-popcon.conf")
    box.sh("systemctl enable -q --now pdns@pyweb-popcon.service")
    box.sh(f"cat >/etc/unbound/unbound.conf.d/system-test.conf <<'END'\n"
           f"{UNBOUND_CONF}END\n"
           "systemctl start unbound.service")
    for unit in ("pdns@pyweb-popcon.service", "pyweb-popcon-dns.socket",
                 "unbound.service"):
        box.sh(f"systemctl is-active -q {unit} || (sleep 3; "
               f"systemctl is-active {unit})")
    # The socket only PowerDNS's group may use.
    assert box.out("stat -c '%a %U %G' /run/pyweb-popcon-server/dns.sock"
                   ).strip() == "660 root pdns"
    box.sh(f"echo 'nameserver {UNBOUND}' >/etc/resolv.conf")
    keygen = box.out("pyweb-popcon-server keygen --export "
                     "/etc/pyweb-popcon-test-key.asc")
    fpr = re.search(r"[0-9A-F]{40}", keygen).group()
    box.sh("cat >>/etc/pyweb-popcon.conf <<'END'\n"
           'TRANSPORT="dns"\n'
           f'SUBMIT_ZONE="{ZONE}"\n'
           'KEYRING="/etc/pyweb-popcon-test-key.asc"\n'
           f'KEY_FINGERPRINTS="{fpr}"\n'
           "END")
    reconfigure(box, "true")


def test_the_upload_unit_submits_over_dns(box):
    box.sh("systemctl start pyweb-popcon.service", timeout=400)
    journal = box.out("journalctl --no-pager -o cat -u pyweb-popcon.service "
                      "-u pyweb-popcon-dns.service -u pdns@pyweb-popcon")
    assert box.out("systemctl show -p Result --value pyweb-popcon.service"
                   ).strip() == "success", journal
    assert f"report sent to the DNS zone {ZONE}" in journal, journal
    assert box.out("systemctl is-active pyweb-popcon-dns.service").strip() \
        == "active"
    box.sh("systemctl start pyweb-popcon-ingest.service", timeout=300)
    hosts = box.out(f"python3 -c \"import sqlite3; print(sqlite3.connect("
                    f"'{DATABASE}').execute('SELECT COUNT(*) FROM hosts')"
                    ".fetchone()[0])\"").strip()
    assert hosts == "1", journal


# The server side: its files, PowerDNS's, and the units' journal.
SERVER_FILES = (f"{SPOOL} /var/lib/pyweb-popcon-server "
                "/etc/powerdns/pdns-pyweb-popcon.conf "
                "/etc/pyweb-popcon-server.conf.d /run/pyweb-popcon-server "
                "/run/pdns-pyweb-popcon")
SERVER_UNITS = ("pyweb-popcon-dns.service", "pyweb-popcon-dns.socket",
                "pdns@pyweb-popcon.service", "pyweb-popcon-ingest.service")


def test_no_address_on_the_server_side(box):
    """Not the client's, not even the resolver's (where the client sent,
    where it asks PowerDNS from): in no file of the server, of PowerDNS's,
    nor in the journal of either.  The search itself is checked first: an
    address planted in a server file and in PowerDNS's journal is found."""
    planted = f"{NET}.9"
    box.sh(f"echo 'planted {planted}' >/var/lib/pyweb-popcon-server/planted\n"
           f"printf 'MESSAGE=planted {planted}\\nOBJECT_SYSTEMD_UNIT="
           "pdns@pyweb-popcon.service\\n' | logger --journald")
    files, journal = places_with(box, planted, SERVER_FILES, SERVER_UNITS)
    assert files == ["/var/lib/pyweb-popcon-server/planted"] and journal, (
        files, journal)
    box.sh("rm /var/lib/pyweb-popcon-server/planted")
    assert box.out(f"ls {SPOOL}/incoming {SPOOL}/quarantine "
                   "/var/lib/pyweb-popcon-server").split()
    for address in (CLIENT, UNBOUND, OUTGOING):
        assert places_with(box, address, SERVER_FILES, SERVER_UNITS) == (
            [], False), address
