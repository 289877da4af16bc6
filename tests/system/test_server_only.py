"""A server-only install in a booted Debian 12 (issue 9, points 5-7): no
client package anywhere in the container.  keygen, the receiver, ingest,
expire and aggregate run through the shipped units, on a local PostgreSQL
over its Unix socket (the units as shipped), then on the same PostgreSQL
over TCP as if it were another machine's (the drop-in that
pyweb-popcon-server(8) gives, taken from the installed page), with the
password a root-only file handed over as a systemd credential.

The tests run in file order on one container of their own.
"""

import json
import re
import time

from booted import (OUTPUT, SPOOL, box, built, log,  # noqa: F401
                    skip_unless_able)
from server_fixtures import make_report

pytestmark = skip_unless_able
ONESHOTS = ("ingest", "expire", "aggregate")
MAN_PAGE = "/usr/share/man/man8/pyweb-popcon-server.8.gz"
PASSWORD_FILE = "/etc/pyweb-popcon-server.password"
PASSWORD = "sesame-42"
HOSTS = ("2b0c1f5e-8d7a-4f4e-9b7e-3f0a9c1d2e4f",
         "7d9e2a41-5b3c-4c8f-9a1e-0f6b2d4c8e10")
POST = """import sys, urllib.error, urllib.request
req = urllib.request.Request("http://127.0.0.1:8080/submit",
                             data=open(sys.argv[1], "rb").read(),
                             headers={"Content-Type": "application/pgp-encrypted"})
try:
    with urllib.request.urlopen(req, timeout=30) as r:
        print(r.status, "-", r.read().decode().strip())
except urllib.error.HTTPError as e:
    print(e.code, e.headers.get("Retry-After"), e.read().decode().strip())
"""


def example(box, section):
    """The first example (.EX ... .EE) under `section` of the installed
    pyweb-popcon-server(8), as text."""
    page = box.out(f"zcat {MAN_PAGE}")
    after = page.split(f".SS {section}\n", 1)[1]
    block = after.split(".EX\n", 1)[1].split(".EE\n", 1)[0]
    for roff, text in (("\\-", "-"), ("\\(aq", "'"), ("\\e", "\\")):
        block = block.replace(roff, text)
    return block


def submit(box, host_id):
    """A report for `host_id` encrypted to the server's key with gpg in
    the container and POSTed to the receiver: (status, Retry-After, body)."""
    box.sh("gpg --homedir /root/enc --batch --yes --trust-model always "
           "--armor -r \"$(cat /root/fingerprint)\" --encrypt "
           "-o /root/report.asc", input=make_report(host_id).decode())
    status, retry, body = box.out("python3 /root/post.py /root/report.asc"
                                  ).split(" ", 2)
    return int(status), retry, json.loads(body)


def spool_empty(box, timeout=120):
    """Wait for the path unit's ingest to empty incoming/."""
    end = time.monotonic() + timeout
    while box.out(f"ls {SPOOL}/incoming").strip():
        assert time.monotonic() < end, box.out(
            "journalctl --no-pager -o cat -u pyweb-popcon-ingest.service "
            "| tail -n 20")
        time.sleep(0.5)
    box.sh("while systemctl is-active -q pyweb-popcon-ingest.service; do "
           "sleep 0.2; done")


def result(box, unit):
    return box.out(f"systemctl show -p Result --value {unit}").strip()


def hosts(box):
    return set(box.out("su postgres -c \"psql -tA popcon -c 'SELECT host_id"
                       " FROM hosts'\"").split())


def test_server_only_install(box):
    # One apt run (the PostgreSQL of the next tests with them) is a good
    # minute less than two.
    box.sh("apt-get install -y -q --no-install-recommends "
           "/srv/debs/python3-pyweb-popcon_*_all.deb "
           "/srv/debs/pyweb-popcon-server_*_all.deb "
           "postgresql python3-psycopg", timeout=900)
    log("server, library and PostgreSQL installed")
    # No client here: not the package, not its program, not its keyring
    # library.  GnuPG came with the server.
    for package in ("pyweb-popcon", "python3-gnupg", "gnupg"):
        assert box.sh(f"dpkg-query -W -f='${{Status}}' {package} | "
                      "grep -q 'ok installed'", check=False).returncode, \
            package
    assert box.sh("test -e /usr/bin/pyweb-popcon", check=False).returncode
    box.sh("for c in gpg gpg-agent gpgconf prlimit; do command -v $c; done")
    keygen = box.out("pyweb-popcon-server keygen --export /root/server.asc")
    fpr = re.search(r"[0-9A-F]{40}", keygen).group()
    box.sh(f"echo {fpr} > /root/fingerprint\n"
           "mkdir -m 700 /root/enc\n"
           "gpg --homedir /root/enc --batch --quiet --import /root/server.asc")
    box.sh("cat > /root/post.py", input=POST)
    # One or two hosts here: publish them.
    box.sh("mkdir -p /etc/pyweb-popcon-server.conf.d\n"
           "echo 'MIN_HOSTS=\"1\"' "
           ">/etc/pyweb-popcon-server.conf.d/system-test.conf")
    assert box.out("stat -c '%a %U %G' /var/lib/pyweb-popcon-server/gnupg "
                   f"{SPOOL}/tmp {SPOOL}/incoming").split("\n")[:3] == [
        "700 pyweb-popcon-ingest pyweb-popcon-ingest",
        "2770 pyweb-popcon-receiver pyweb-popcon-ingest",
        "2770 pyweb-popcon-receiver pyweb-popcon-ingest"]
    box.sh("systemctl is-active pyweb-popcon-receiver.service || "
           "(sleep 3; systemctl is-active pyweb-popcon-receiver.service)")


def test_local_postgresql_with_the_units_as_shipped(box):
    """The man page's recipe for a local PostgreSQL: its Unix socket and
    peer authentication work through PrivateNetwork=yes, IPAddressDeny=any,
    RestrictAddressFamilies=AF_UNIX and PrivateUsers=yes."""
    box.sh("mkdir -p /etc/pyweb-popcon-server.conf.d\n"
           + example(box, "A PostgreSQL on the same machine"))
    assert box.out("cat /etc/pyweb-popcon-server.conf.d/database.conf") \
        == 'DATABASE_URL="postgresql:///popcon"\n'
    for unit in ONESHOTS:
        assert box.out(f"systemctl show -p DropInPaths --value "
                       f"pyweb-popcon-{unit}.service").strip() == ""
    status, _, answer = submit(box, HOSTS[0])
    assert status == 202, answer
    spool_empty(box)        # the path unit started ingest
    assert result(box, "pyweb-popcon-ingest.service") == "success"
    assert hosts(box) == {HOSTS[0]}
    box.sh("systemctl start pyweb-popcon-expire.service "
           "pyweb-popcon-aggregate.service", timeout=300)
    for unit in ONESHOTS:
        assert result(box, f"pyweb-popcon-{unit}.service") == "success"
    assert json.loads(box.out(f"cat {OUTPUT}/stats.json"))["hosts"] == 1
    log("local PostgreSQL: " + box.out(
        "journalctl --no-pager -o cat -u pyweb-popcon-ingest.service "
        "| grep ingested | tail -n 1"))


def test_temporaries_do_not_start_ingest_and_expire_removes_them(box):
    """Nothing in tmp/, and no dot-file in incoming/, starts the path unit's
    ingest; expire deletes such files once an hour old."""
    before = box.out("systemctl show -p InvocationID --value "
                     "pyweb-popcon-ingest.service")
    box.sh(f"touch -d '2 hours ago' {SPOOL}/tmp/.tmp-killed "
           f"{SPOOL}/incoming/.tmp-killed-before-tmp\n"
           f"touch {SPOOL}/tmp/.tmp-writing\n"
           f"chown pyweb-popcon-receiver:pyweb-popcon-ingest {SPOOL}/tmp/.tmp-*"
           f" {SPOOL}/incoming/.tmp-*\n"
           "sleep 3")
    assert box.out("systemctl show -p InvocationID --value "
                   "pyweb-popcon-ingest.service") == before
    assert box.out("systemctl show -p ActiveState -p Result "
                   "pyweb-popcon-ingest.path").split() == [
        "Result=success", "ActiveState=active"]
    box.sh("systemctl start pyweb-popcon-expire.service", timeout=300)
    assert box.out(f"ls -A {SPOOL}/tmp {SPOOL}/incoming").split() == [
        f"{SPOOL}/incoming:", f"{SPOOL}/tmp:", ".tmp-writing"]
    assert "2 temporary files older than" in box.out(
        "journalctl --no-pager -o cat -u pyweb-popcon-expire.service")
    box.sh(f"rm {SPOOL}/tmp/.tmp-writing")


def test_a_full_spool_is_503(box):
    """At SPOOL_MAX_FILES the receiver unit answers 503 with Retry-After,
    and says so in its journal, once."""
    box.sh("systemctl stop pyweb-popcon-ingest.path\n"
           "echo 'SPOOL_MAX_FILES=\"1\"' "
           ">/etc/pyweb-popcon-server.conf.d/full.conf\n"
           "systemctl restart pyweb-popcon-receiver.service\n"
           "until python3 -c 'import urllib.request; urllib.request.urlopen("
           "\"http://127.0.0.1:8080/health\")' 2>/dev/null; do sleep 0.2; "
           "done")
    status, _, taken = submit(box, HOSTS[1])
    assert status == 202, taken
    for _ in range(3):
        status, retry, answer = submit(box, HOSTS[1])
        assert (status, retry) == (503, "600"), answer
    assert box.out(f"ls {SPOOL}/incoming").split() == [taken["receipt"]]
    journal = box.out("journalctl --no-pager -o cat "
                      "-u pyweb-popcon-receiver.service")
    assert journal.count("refusing submissions: 1 files in") >= 1
    box.sh("rm /etc/pyweb-popcon-server.conf.d/full.conf\n"
           "systemctl restart pyweb-popcon-receiver.service\n"
           "systemctl start pyweb-popcon-ingest.path")
    spool_empty(box)
    assert hosts(box) == set(HOSTS)


def test_remote_postgresql_with_the_documented_drop_in(box):
    """Over TCP (127.0.0.1 stands in for another machine: the units' own
    network namespace has none of it) with a password: the units as shipped
    cannot reach it, the drop-in from the man page makes them, and the
    root-only password file reaches them as a systemd credential."""
    box.sh("su postgres -c \"psql -q -c \\\"ALTER ROLE "
           f"\\\\\\\"pyweb-popcon-ingest\\\\\\\" PASSWORD '{PASSWORD}'\\\"\"\n"
           f"install -m 0600 /dev/null {PASSWORD_FILE}\n"
           f"echo {PASSWORD} > {PASSWORD_FILE}\n"
           "cat > /etc/pyweb-popcon-server.conf.d/database.conf <<'END'\n"
           'DATABASE_URL="postgresql://pyweb-popcon-ingest@127.0.0.1/popcon"\n'
           f'DATABASE_PASSWORD_FILE="{PASSWORD_FILE}"\n'
           "END")
    box.sh("su postgres -c \"psql -q -c 'ALTER SYSTEM SET log_connections "
           "= on' -c 'SELECT pg_reload_conf()'\"")
    assert PASSWORD not in box.out("pyweb-popcon-server config")
    # By hand, root reads the file, then becomes pyweb-popcon-ingest.
    assert re.search(r"^Total\s+2$", box.out("pyweb-popcon-server stats"),
                     re.M)

    def aggregate():
        box.sh("systemctl start pyweb-popcon-aggregate.service", check=False,
               timeout=300)
        return result(box, "pyweb-popcon-aggregate.service"), box.out(
            "journalctl --no-pager -o cat -n 10 "
            "-u pyweb-popcon-aggregate.service")

    # As shipped: the password file is not the unit user's to read ...
    outcome, journal = aggregate()
    assert outcome == "exit-code" and "Permission denied" in journal, journal
    # ... and, were it readable, there is no network to reach it by.
    box.sh(f"chgrp pyweb-popcon-ingest {PASSWORD_FILE}; "
           f"chmod 0640 {PASSWORD_FILE}")
    outcome, journal = aggregate()
    assert outcome == "exit-code", journal
    assert "cannot connect to PostgreSQL" in journal, journal
    box.sh(f"chgrp root {PASSWORD_FILE}; chmod 0600 {PASSWORD_FILE}")

    drop_in = example(box, "A PostgreSQL on another machine")
    log("the man page's drop-in:\n" + drop_in)
    assert "192.0.2.10" in drop_in
    for unit in ONESHOTS:
        box.sh(f"d=/etc/systemd/system/pyweb-popcon-{unit}.service.d\n"
               "mkdir -p $d\n"
               "cat > $d/postgresql.conf",
               input=drop_in.replace("192.0.2.10", "127.0.0.1"))
    box.sh("systemctl daemon-reload")
    # Empty every partition (hosts_*, host_frameworks_*, host_pythons_*).
    box.sh("su postgres -c 'psql -q -v ON_ERROR_STOP=1 popcon'",
           input="SELECT 'TRUNCATE ' || string_agg(tablename, ', ') FROM "
                 "pg_tables WHERE tablename ~ '^hosts?_' \\gexec\n")
    before = tcp_connections(box)
    status, _, answer = submit(box, HOSTS[0])
    assert status == 202, answer
    spool_empty(box)
    box.sh("systemctl start pyweb-popcon-expire.service "
           "pyweb-popcon-aggregate.service", timeout=300)
    for unit in ONESHOTS:
        assert result(box, f"pyweb-popcon-{unit}.service") == "success", unit
    assert hosts(box) == {HOSTS[0]}
    assert json.loads(box.out(f"cat {OUTPUT}/stats.json"))["hosts"] == 1
    # Over TCP indeed: one connection per unit at least.
    assert tcp_connections(box) >= before + 3


def tcp_connections(box):
    """How many connections PostgreSQL has logged from 127.0.0.1."""
    return int(box.out("cat /var/log/postgresql/postgresql-*-main.log | "
                       "grep -c 'connection received: host=127.0.0.1' "
                       "|| true"))
