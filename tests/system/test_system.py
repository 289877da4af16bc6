"""The packages in a booted Debian 12: the administrator's and the
maintainer's story, end to end (issue 5, point 7).

The freshly built packages are installed with apt in a container booted by
tests/booted.py.  The tests run in file order on one container.
"""

import datetime
import json
import re

from booted import (CLIENT_UNITS, DATABASE, LISTEN, OUTPUT,  # noqa: F401
                    SERVER_UNITS, SPOOL, boot, box, built, conf_value,
                    discard, log, reconfigure, skip_unless_able, spool_files,
                    timer_state)

pytestmark = skip_unless_able
EXPOSURE = {"pyweb-popcon-collect.service": 1.0,
            "pyweb-popcon.service": 2.0}
SERVER_EXPOSURE = 2.5
# Other services' sockets under /run: a unit that reaches one can have that
# service act for it (D-Bus; systemd-resolved's name lookups; userdb).
DBUS = "/run/dbus/system_bus_socket"
RESOLVED = "/run/systemd/resolve/io.systemd.Resolve"
USERDB = "/run/systemd/userdb/io.systemd.Multiplexer"
CONNECT = ("python3 -c 'import socket, sys; "
           "socket.socket(socket.AF_UNIX).connect(sys.argv[1])'")


def unreachable(*sockets):
    """Probe lines that fail when any of `sockets` answers (D-Bus also
    through busctl)."""
    return "".join(f"if {CONNECT} {s} 2>/dev/null; then "
                   f"echo reachable: {s}; exit 1; fi\n" for s in sockets) + (
        "if busctl --system --no-pager list >/dev/null 2>&1; then "
        "echo reachable: D-Bus; exit 1; fi\n")

# -- the story -----------------------------------------------------------------

def test_default_install(box):
    """apt install: debconf says no, the timer is off, and starting the
    units by hand sends nothing and opens no connection."""
    box.sh("apt-get install -y -q --no-install-recommends "
           "/srv/debs/python3-pyweb-popcon_*_all.deb "
           "/srv/debs/pyweb-popcon_*_all.deb "
           "/srv/debs/pyweb-popcon-server_*_all.deb", timeout=900)
    log("packages installed")
    assert "pyweb-popcon/participate: false" in box.out(
        "debconf-show pyweb-popcon")
    conf = box.out("cat /etc/pyweb-popcon.conf")
    assert conf_value(conf, "PARTICIPATE") == "no"
    assert timer_state(box) == ("disabled", "inactive")
    assert "pyweb-popcon.timer" not in box.out(
        "systemctl list-timers --no-pager")
    status = box.out("pyweb-popcon status")
    assert "Participating: no" in status
    assert "Timer: pyweb-popcon.timer disabled" in status

    # The server is up (the maintainer's side of the same machine).
    box.sh("systemctl is-active pyweb-popcon-receiver.service || "
           "(sleep 3; systemctl is-active pyweb-popcon-receiver.service)")
    # Count what the units do on the network: systemd's IP accounting.
    for unit in CLIENT_UNITS:
        box.sh(f"systemctl set-property --runtime {unit} IPAccounting=yes")
    box.sh("systemctl start pyweb-popcon.service")
    for unit in CLIENT_UNITS:
        result = box.out(f"systemctl show -p Result --value {unit}").strip()
        assert result == "success", unit
        packets = box.out(f"systemctl show -p IPEgressPackets --value "
                          f"{unit}").strip()
        # "[no data]": no BPF cgroup accounting here (in a container); the
        # empty spool below and PrivateNetwork= still speak.
        assert packets in ("0", "[not set]", "", "[no data]"), (unit, packets)
        log(f"{unit}: IP egress packets {packets}")
    journal = box.out("journalctl --no-pager -o cat -u pyweb-popcon.service "
                      "-u pyweb-popcon-collect.service")
    assert "not participating" in journal
    assert spool_files(box) == []
    assert box.out("find /var/lib/pyweb-popcon/ -type f 2>/dev/null "
                   "| grep -v host-id", check=False).strip() == ""


def test_yes_without_a_server(box):
    """Yes while this build ships no server: the weekly units say what is
    missing and where it goes, and are not failed for it."""
    reconfigure(box, "true")
    assert timer_state(box) == ("enabled", "active")
    box.sh("systemctl start pyweb-popcon.service")
    for unit in CLIENT_UNITS:
        shown = box.out(f"systemctl show -p Result -p ExecMainStatus "
                        f"{unit}")
        assert "Result=success" in shown and "ExecMainStatus=6" in shown, \
            (unit, shown)
    assert "failed" not in box.out("systemctl is-failed "
                                   "pyweb-popcon-collect.service",
                                   check=False)
    journal = box.out("journalctl --no-pager -o cat -u "
                      "pyweb-popcon-collect.service")
    assert "participating, but no server is configured: KEY_FINGERPRINTS " \
        "is empty" in journal
    assert "/etc/pyweb-popcon.conf.d/server.conf" in journal
    assert "Server: not configured (KEY_FINGERPRINTS is empty" in box.out(
        "pyweb-popcon status")
    assert spool_files(box) == []
    log("yes without a server: " + journal.strip().splitlines()[-1])


def test_participate_and_deliver(box):
    """A preseeded yes through dpkg-reconfigure: the timer runs weekly and,
    started, delivers a report that ingest and aggregate turn into exactly
    this machine's frameworks: python3-flask from apt, Django in a venv."""
    # Frameworks on this machine.
    box.sh("apt-get install -y -q --no-install-recommends python3-flask",
           timeout=600)
    box.sh("python3 -m venv --without-pip /srv/app/venv\n"
           "site=$(echo /srv/app/venv/lib/python3.*/site-packages)\n"
           "python3 -m zipfile -e /srv/wheels/$(ls /srv/wheels | "
           "grep -i '^django-4.2' | tail -n 1) \"$site\"\n"
           "ls \"$site\" | grep -i '^django-4.2.*dist-info$'")
    # The maintainer: a server key, small counts published for the test.
    box.sh("mkdir -p /etc/pyweb-popcon-server.conf.d\n"
           "echo 'MIN_HOSTS=\"1\"' >"
           " /etc/pyweb-popcon-server.conf.d/system-test.conf")
    keygen = box.out("pyweb-popcon-server keygen --export "
                     "/etc/pyweb-popcon-test-key.asc")
    fpr = re.search(r"[0-9A-F]{40}", keygen).group()
    assert box.out("stat -c %U /var/lib/pyweb-popcon-server/gnupg").strip() \
        == "pyweb-popcon-ingest"
    # The administrator points the client at it; the postinst keeps these.
    box.sh("cat >>/etc/pyweb-popcon.conf <<'END'\n"
           f'SUBMIT_URL="http://{LISTEN}/submit"\n'
           'KEYRING="/etc/pyweb-popcon-test-key.asc"\n'
           f'KEY_FINGERPRINTS="{fpr}"\n'
           "END")
    reconfigure(box, "true")
    conf = box.out("cat /etc/pyweb-popcon.conf")
    assert conf_value(conf, "PARTICIPATE") == "yes"
    assert conf_value(conf, "KEY_FINGERPRINTS") == fpr
    assert conf_value(conf, "SUBMIT_URL") == f"http://{LISTEN}/submit"
    assert timer_state(box) == ("enabled", "active")

    listed = box.out("systemctl list-timers --no-pager pyweb-popcon.timer")
    log("list-timers:\n" + listed)
    assert "pyweb-popcon.timer" in listed
    nxt = box.out("systemctl show -p NextElapseUSecRealtime --value "
                  "pyweb-popcon.timer").strip()
    assert nxt, "the timer has no next run"
    when = datetime.datetime.strptime(nxt.rsplit(" ", 1)[0],
                                      "%a %Y-%m-%d %H:%M:%S")
    now = datetime.datetime.strptime(
        box.out("date -u '+%Y-%m-%d %H:%M:%S'").strip(), "%Y-%m-%d %H:%M:%S")
    # OnCalendar=weekly is Monday 00:00; RandomizedDelaySec=1w with
    # FixedRandomDelay=yes puts this machine's run at a fixed point of the
    # week that follows.  So the next run is less than a week after the
    # next Monday, and from then on exactly weekly.
    monday = (now + datetime.timedelta(days=7 - now.weekday())).replace(
        hour=0, minute=0, second=0)
    log(f"next run {when} (now {now}, in {when - now})")
    assert f"Timer: pyweb-popcon.timer enabled, next run {nxt}" in \
        box.out("pyweb-popcon status")
    assert now < when <= monday + datetime.timedelta(days=7), (now, when)

    # Started by hand rather than waiting for the week: the collect unit
    # first, then the upload.
    box.sh("systemctl start pyweb-popcon.service", timeout=400)
    journal = box.out("journalctl --no-pager -o cat -u pyweb-popcon.service "
                      "-u pyweb-popcon-collect.service")
    for unit in CLIENT_UNITS:
        assert box.out(f"systemctl show -p Result --value {unit}").strip() \
            == "success", journal
    history = box.out("pyweb-popcon history")
    assert history.strip(), journal
    status = box.out("pyweb-popcon status")
    log("status:\n" + status)

    # The path unit may have ingested already; once more does no harm.
    box.sh("systemctl start pyweb-popcon-ingest.service", timeout=300)
    box.sh("systemctl start pyweb-popcon-aggregate.service", timeout=300)
    stats = json.loads(box.out(f"cat {OUTPUT}/stats.json"))
    log("stats.json frameworks: " + json.dumps(stats["frameworks"]))
    assert stats["hosts"] == 1
    found = {f["name"]: f for f in stats["frameworks"]}
    assert set(found) == {"django", "flask"}, found
    assert found["flask"]["via"]["deb"] == 1
    assert found["django"]["via"]["venv"] == 1
    assert [v["version"] for v in found["django"]["versions"]] == ["4.2"]
    assert spool_files(box) == []
    # What was sent is what show says, frameworks-wise.
    shown = json.loads(box.out("pyweb-popcon show"))
    assert {f["name"] for f in shown["frameworks"]} == {"django", "flask"}
    # The "used" votes too: the collect unit's read-only view keeps them.
    sent = json.loads(box.out("pyweb-popcon history 1"))
    assert [(f["name"], f["used"]) for f in sent["frameworks"]] == \
        [(f["name"], f["used"]) for f in shown["frameworks"]]
    assert None not in {f["used"] for f in sent["frameworks"]}

    # An administrator's commands run as root leave nothing that the units
    # cannot read or replace afterwards.
    box.sh("pyweb-popcon collect && pyweb-popcon-server aggregate")
    box.sh("systemctl start pyweb-popcon.service "
           "pyweb-popcon-aggregate.service", timeout=400)
    for unit in CLIENT_UNITS + ("pyweb-popcon-aggregate.service",):
        assert box.out(f"systemctl show -p Result --value {unit}").strip() \
            == "success", unit
    assert box.out(f"stat -c %U {OUTPUT}/stats.json").strip() == \
        "pyweb-popcon-ingest"


def test_toggle(box):
    """no -> yes -> no -> yes through dpkg-reconfigure: the timer follows
    each time (deb-systemd-helper alone would leave it off)."""
    for answer, want in (("false", ("disabled", "inactive")),
                         ("true", ("enabled", "active")),
                         ("false", ("disabled", "inactive")),
                         ("true", ("enabled", "active"))):
        reconfigure(box, answer)
        assert timer_state(box) == want, answer
        value = conf_value(box.out("cat /etc/pyweb-popcon.conf"),
                           "PARTICIPATE")
        assert value == ("yes" if answer == "true" else "no")
        listed = box.out("systemctl list-timers --no-pager")
        assert ("pyweb-popcon.timer" in listed) == (answer == "true")
    # The administrator's lines survived all of it.
    assert conf_value(box.out("cat /etc/pyweb-popcon.conf"), "SUBMIT_URL")
    # An edit by hand is the current answer for the next reconfigure.
    box.sh("sed -i 's/^PARTICIPATE=.*/PARTICIPATE=\"no\"/' "
           "/etc/pyweb-popcon.conf; dpkg-reconfigure -fnoninteractive "
           "pyweb-popcon")
    assert timer_state(box) == ("disabled", "inactive")
    reconfigure(box, "true")
    assert timer_state(box) == ("enabled", "active")


def test_expiry(box):
    """expire drops a host received 21 days ago, keeps one from 19."""
    ids = {}
    for name, days in (("old", 21), ("recent", 19)):
        root = f"/root/fake-{name}"
        box.sh(f"mkdir -p {root}/etc {root}/var/lib/dpkg\n"
               f": > {root}/var/lib/dpkg/status\n"
               f"cp /etc/machine-id {root}/etc/\n"
               f"grep -v '^PARTICIPATE=' /etc/pyweb-popcon.conf "
               f"> {root}/etc/pyweb-popcon.conf\n"
               f"echo 'PARTICIPATE=\"yes\"' >> {root}/etc/pyweb-popcon.conf\n"
               f"mkdir -p $(dirname {root}/etc/pyweb-popcon-test-key.asc)\n"
               f"cp /etc/pyweb-popcon-test-key.asc {root}/etc/\n"
               f"pyweb-popcon collect --root {root} --virt container")
        ids[name] = json.loads(box.out(
            f"cat {root}/var/lib/pyweb-popcon/host-id"))["host_id"]
        # Into the spool as the receiver would have put it, received
        # `days` days ago.
        box.sh(f"f={SPOOL}/incoming/system-test-{name}\n"
               f"cp {root}/var/lib/pyweb-popcon/outbox/report.asc $f.tmp\n"
               f"chown pyweb-popcon-receiver:pyweb-popcon-ingest $f.tmp\n"
               f"chmod 640 $f.tmp\n"
               f"touch -d '{days} days ago' $f.tmp\n"
               f"mv $f.tmp $f")
    # The path unit may already be ingesting the first file while the
    # second arrives; that run leaves the second for the next one.
    for _ in range(5):
        box.sh("systemctl start pyweb-popcon-ingest.service", timeout=300)
        if spool_files(box) == []:
            break
    assert spool_files(box) == []

    def hosts():
        return set(box.out(
            "python3 -c 'import sqlite3, sys; print(\"\\n\".join(r[0] for r "
            f"in sqlite3.connect(\"file:{DATABASE}?mode=ro\", uri=True)"
            ".execute(\"SELECT host_id FROM hosts\")))'").split())

    before = hosts()
    assert {ids["old"], ids["recent"]} <= before, before
    box.sh("systemctl start pyweb-popcon-expire.service", timeout=300)
    after = hosts()
    assert ids["old"] not in after
    assert ids["recent"] in after
    log("expire: " + box.out("journalctl --no-pager -o cat -u "
                             "pyweb-popcon-expire.service | tail -n 3"))


def test_units_in_the_booted_system(box):
    """systemd-analyze security and verify inside the booted system."""
    scores = {}
    for unit in CLIENT_UNITS + SERVER_UNITS:
        text = box.out(f"systemd-analyze security --no-pager {unit}")
        scores[unit] = float(re.search(r"Overall exposure level for "
                                       r"\S+: ([0-9.]+)", text).group(1))
    log("exposure: " + ", ".join(f"{u} {s}" for u, s in scores.items()))
    for unit, score in scores.items():
        assert score <= EXPOSURE.get(unit, SERVER_EXPOSURE), (unit, score)
    box.sh("cd /lib/systemd/system && systemd-analyze verify --man=no "
           "pyweb-popcon*.service pyweb-popcon*.timer pyweb-popcon*.path")
    # The sandboxes as the units' programs see them: copies of the units
    # whose ExecStart= is a probe script instead.
    box.sh("mkdir -p /usr/lib/pyweb-popcon-probe\n"
           "cat > /usr/lib/pyweb-popcon-probe/upload <<'END'\n"
           "set -e\n"
           "test -d /var/lib/pyweb-popcon/outbox -o -d /var/lib/pyweb-popcon\n"
           "test -r /etc/pyweb-popcon.conf\n"
           # The release's Python whole: its sitecustomize is in /etc.
           "python3 -c 'import sitecustomize'\n"
           "for p in /var/lib/dpkg/status /srv/app /etc/machine-id /home "
           "/root /etc/passwd /var/log /var/spool/pyweb-popcon-server "
           "/usr/local; do\n"
           "  if (test -f $p && test -r $p) || ls -A $p 2>/dev/null "
           "| grep -q .; then echo visible: $p; exit 1; fi\n"
           "done\n"
           f"{unreachable(DBUS)}"
           "END\n"
           "cat > /usr/lib/pyweb-popcon-probe/collect <<'END'\n"
           "set -e\n"
           "test -r /var/lib/dpkg/status\n"
           "test -r /srv/app/venv/pyvenv.cfg\n"
           "if touch /etc/probe /srv/probe /usr/probe 2>/dev/null; then "
           "echo writable; exit 1; fi\n"
           "if python3 -c 'import socket; socket.create_connection("
           "(\"127.0.0.1\", 8080), 2)' 2>/dev/null; then echo network; exit 1;"
           " fi\n"
           # Not even an IP socket, so not resolved's stub at 127.0.0.53.
           "if python3 -c 'import socket; socket.socket(socket.AF_INET, "
           "socket.SOCK_DGRAM)' 2>/dev/null; then echo IP socket; exit 1; fi\n"
           f"{unreachable(DBUS, RESOLVED, USERDB)}"
           # What it keeps of /run: the journal, and what says container.
           "test -S /run/systemd/journal/socket\n"
           "systemd-detect-virt --quiet --container\n"
           "END\n"
           f"cat > /usr/lib/pyweb-popcon-probe/listen.py <<'END'\n"
           "import os, socket, time\n"
           f"os.makedirs(os.path.dirname('{RESOLVED}'), exist_ok=True)\n"
           "s = socket.socket(socket.AF_UNIX)\n"
           f"s.bind('{RESOLVED}')\n"
           "s.listen()\n"
           "time.sleep(3600)\n"
           "END\n"
           "for u in upload:pyweb-popcon.service "
           "collect:pyweb-popcon-collect.service; do\n"
           "  name=${u%%:*}; unit=${u#*:}\n"
           "  sed -e \"s|^ExecStart=.*|ExecStart=/bin/sh "
           "/usr/lib/pyweb-popcon-probe/$name|\" "
           "-e '/^Requires=/d' /lib/systemd/system/$unit "
           "> /run/systemd/system/probe-$name.service\n"
           "done\n"
           # The collect probe in a unit that does not hide /run: it must
           # fail, or the probe proves nothing.
           "sed -e '/^TemporaryFileSystem=\\/run/d' "
           "-e '/^BindReadOnlyPaths=.*\\/run\\/systemd\\/journal/d' "
           "/run/systemd/system/probe-collect.service "
           "> /run/systemd/system/probe-collect-open.service\n"
           "systemctl daemon-reload\n"
           # The sockets are there to reach: D-Bus in every booted system,
           # and resolved's, when it is not installed, a stand-in.
           f"made=; test -e {RESOLVED} || {{ made=1; systemd-run --quiet "
           "--unit=probe-listen python3 /usr/lib/pyweb-popcon-probe/listen.py;"
           " }\n"
           f"for i in $(seq 100); do test -S {RESOLVED} && break; "
           "sleep 0.1; done\n"
           f"{CONNECT} {RESOLVED} && {CONNECT} {DBUS}\n"
           "busctl --system --no-pager list >/dev/null\n"
           "rc=0; systemctl start probe-upload.service probe-collect.service"
           " || { rc=1; journalctl --no-pager -o cat -u probe-upload.service"
           " -u probe-collect.service | tail -n 20; }\n"
           "if systemctl start probe-collect-open.service; then\n"
           "  echo the probe finds nothing even with /run in view; rc=1\n"
           "elif ! journalctl --no-pager -o cat -u probe-collect-open.service"
           f" | grep -qx 'reachable: {DBUS}'; then\n"
           "  echo the unhidden /run failed the probe for another reason; "
           "rc=1\n"
           "fi\n"
           "if [ -n \"$made\" ]; then systemctl stop probe-listen.service; "
           f"rm -f {RESOLVED}; rmdir $(dirname {RESOLVED}); fi\n"
           "systemctl reset-failed 'probe-*' 2>/dev/null || true\n"
           "rm -rf /usr/lib/pyweb-popcon-probe "
           "/run/systemd/system/probe-*.service\n"
           "systemctl daemon-reload\n"
           "exit $rc")
    # No unit of ours failed along the way.
    failed = box.out("systemctl list-units --failed --no-legend --plain "
                     "'pyweb-popcon*'")
    assert failed.strip() == "", failed


def test_purge_leaves_nothing(box):
    """apt purge: no file, no debconf answer, no timer."""
    # What this test itself put there goes first.
    box.sh("rm -f /etc/pyweb-popcon-test-key.asc "
           "/etc/pyweb-popcon-server.conf.d/system-test.conf")
    owned = box.out("dpkg -L pyweb-popcon pyweb-popcon-server "
                    "python3-pyweb-popcon").split()
    box.sh("apt-get purge -y -q pyweb-popcon pyweb-popcon-server "
           "python3-pyweb-popcon", timeout=300)
    left = [p for p in owned if p.startswith(("/etc", "/lib/systemd",
                                              "/usr/lib/systemd",
                                              "/usr/bin", "/usr/lib/python3",
                                              "/usr/share/pyweb-popcon",
                                              "/usr/share/man"))
            and "pyweb" in p
            and box.sh(f"test -e '{p}'", check=False).returncode == 0]
    assert left == []
    made = box.out("ls -d /etc/pyweb-popcon.conf /etc/pyweb-popcon.conf.d "
                   "/var/lib/pyweb-popcon /var/lib/private/pyweb-popcon "
                   "/var/lib/pyweb-popcon-server /var/spool/pyweb-popcon-server"
                   " /etc/systemd/system/*/pyweb-popcon* "
                   "/var/lib/systemd/timers/*pyweb-popcon* "
                   "/var/lib/systemd/deb-systemd-helper-enabled/*pyweb* "
                   "2>/dev/null", check=False)
    assert made.strip() == ""
    assert box.out("debconf-show pyweb-popcon", check=False).strip() == ""
    assert "pyweb-popcon" not in box.out("systemctl list-timers --all "
                                         "--no-pager")
    assert box.out("find /etc /var /usr /lib -name '*pyweb-popcon*' "
                   "! -path '/var/cache/apt/*' ! -path '/var/log/*' "
                   "! -path '/var/lib/dpkg/*' 2>/dev/null",
                   check=False).strip() == ""


def test_autopkgtest(built):
    """debian/tests (the installed client against the installed server on
    loopback), run by autopkgtest's null runner in a booted system of its
    own: the packages are installed by autopkgtest itself."""
    c, tree = boot(*built)
    try:
        c.sh("apt-get install -y -q --no-install-recommends autopkgtest",
             timeout=600)
        done = c.sh("autopkgtest --output-dir /root/autopkgtest-out "
                    "/srv/src/ /srv/debs/*.deb -- null", check=False,
                    timeout=900)
        summary = c.out("cat /root/autopkgtest-out/summary", check=False)
        log("autopkgtest: " + summary.strip())
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
        assert re.search(r"^loopback\s+PASS", summary, re.M), summary
    finally:
        discard(c, tree)
