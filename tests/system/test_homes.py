"""Home directories as one explicit choice, in a booted Debian 12 (issue 20,
point 2).

A user made by adduser (a 0700 home) has Bottle from `pip install --user`
and Django in a project's venv; root has Bottle in a venv of its own; and
/srv/app has Django in a venv, outside every home.  The weekly collect
unit, as shipped, runs each time and its outbox is decrypted with the
test's key: not chosen, the report has only /srv/app's Django and the unit
has no capability; chosen through debconf (a hand edit kept by
dpkg-reconfigure, then a preseeded answer), it has the homes' frameworks
too, with CAP_DAC_READ_SEARCH and nothing else added: no network, a
read-only view, exposure still <= 1.0.

The tests run in file order on one container of their own.
"""

import json
import os
import re
import shutil

import pytest

from booted import (box, built, conf_value, log,  # noqa: F401
                    reconfigure, skip_unless_able, wheel)

pytestmark = skip_unless_able
UNIT = "pyweb-popcon-collect.service"
DROPIN = "/etc/systemd/system/pyweb-popcon-collect.service.d/homes.conf"
KEY = "/etc/pyweb-popcon-test-key.asc"
OUTBOX = "/var/lib/pyweb-popcon/outbox/report.asc"
WHEEL = "ls /srv/wheels/{0}-*.whl | tail -n 1"
# What each answer must give: (name, via, envs) of the report's entries,
# from what the story installs where.
OUTSIDE = {("django", "venv", 1)}
WITH_HOMES = {("django", "venv", 2),      # /srv/app's and the project's
              ("bottle", "user", 1),      # pip install --user
              ("bottle", "venv", 1)}      # root's venv


def collected(box, keys):
    """(name, via, envs) of the report the collect unit puts in its
    outbox, decrypted with the test's key."""
    box.sh(f"rm -f {OUTBOX}; systemctl start {UNIT}", timeout=400)
    journal = box.out(f"journalctl --no-pager -o cat -u {UNIT} | tail -n 5")
    assert box.out(f"systemctl show -p Result -p ExecMainStatus {UNIT}") \
        == "Result=success\nExecMainStatus=0\n", journal
    report = json.loads(keys.decrypt(box.out(f"cat {OUTBOX}")))
    assert report["format"] >= 2
    return {(f["name"], f["via"], f["envs"]) for f in report["frameworks"]}


def sandbox(box):
    """The collect unit's settings that say what it may do."""
    shown = box.out("systemctl show -p CapabilityBoundingSet "
                    "-p AmbientCapabilities -p PrivateUsers -p PrivateNetwork"
                    f" -p ProtectHome -p ProtectSystem {UNIT}")
    return dict(line.split("=", 1) for line in shown.splitlines())


def exposure(box):
    text = box.out(f"systemd-analyze security --no-pager {UNIT}")
    return float(re.search(r"Overall exposure level for \S+: ([0-9.]+)",
                           text).group(1))


def probe(box):
    """What a copy of the collect unit (its drop-ins too) whose program is a
    shell can do: read the user's 0700 home? write it? open an IP socket?"""
    script = ("for what in 'ls /home/alice/.local/lib' 'ls /root/tools' "
              "'touch /home/alice/probe' 'touch /srv/probe' "
              "'python3 -c \"import socket; socket.socket()\"'; do\n"
              "  if sh -c \"$what\" >/dev/null 2>&1; then echo \"yes: $what\";"
              " else echo \"no: $what\"; fi\n"
              "done")
    box.sh("mkdir -p /usr/lib/pyweb-popcon-probe\n"
           "cat > /usr/lib/pyweb-popcon-probe/homes <<'END'\n" + script +
           "\nEND\n"
           "sed 's|^ExecStart=.*|ExecStart=/bin/sh "
           f"/usr/lib/pyweb-popcon-probe/homes|' /lib/systemd/system/{UNIT}"
           " > /run/systemd/system/probe-homes.service\n"
           f"if [ -e {DROPIN} ]; then "
           "mkdir -p /run/systemd/system/probe-homes.service.d; "
           f"ln -sf {DROPIN} /run/systemd/system/probe-homes.service.d/; fi\n"
           "systemctl daemon-reload\n"
           "systemctl start probe-homes.service")
    out = box.out("journalctl --no-pager -o cat -u probe-homes.service "
                  "| grep -E '^(yes|no): '")
    box.sh("rm -rf /run/systemd/system/probe-homes.service "
           "/run/systemd/system/probe-homes.service.d "
           "/usr/lib/pyweb-popcon-probe\n"
           "systemctl daemon-reload")
    return {line.split(": ", 1)[1]: line.startswith("yes")
            for line in out.splitlines()[-5:]}


@pytest.fixture(scope="module")
def keys(box, gpg_keys):
    """The key reports are encrypted to, in the container; the wheels."""
    wheel("bottle-*.whl", "bottle")
    shutil.copy(gpg_keys.public, os.path.join(box.tree, KEY.lstrip("/")))
    return gpg_keys


def test_a_machine_with_frameworks_in_homes(box, keys):
    box.sh("apt-get install -y -q --no-install-recommends adduser "
           "python3-pip /srv/debs/python3-pyweb-popcon_*_all.deb "
           "/srv/debs/pyweb-popcon_*_all.deb", timeout=900)
    box.sh("adduser --disabled-password --gecos '' alice >/dev/null")
    assert box.out("stat -c %a /home/alice").strip() == "700"
    # The user's own: pip --user (past bookworm's externally managed
    # marker, as a user would be told to), and a project's venv.
    box.sh("runuser -u alice -- env HOME=/home/alice python3 -m pip install"
           " --user --break-system-packages --no-index --no-deps "
           f"--no-warn-script-location $({WHEEL.format('bottle')})\n"
           "runuser -u alice -- python3 -m venv --without-pip "
           "/home/alice/proj/.venv\n"
           "runuser -u alice -- env HOME=/home/alice python3 -m pip "
           "--python /home/alice/proj/.venv/bin/python install --no-index "
           f"--no-deps $({WHEEL.format('[Dd]jango')})\n"
           "ls /home/alice/.local/lib/python3.*/site-packages "
           "| grep -q '^bottle-.*dist-info$'\n"
           "ls /home/alice/proj/.venv/lib/python3.*/site-packages "
           "| grep -q '^[Dd]jango-.*dist-info$'")
    # Root's venv, and one outside every home.
    for venv, name in (("/root/tools/venv", "bottle"),
                       ("/srv/app/venv", "[Dd]jango")):
        box.sh(f"python3 -m venv --without-pip {venv}\n"
               f"python3 -m zipfile -e $({WHEEL.format(name)}) "
               f"{venv}/lib/python3.*/site-packages/")
    fpr = keys.fingerprint
    box.sh("cat >>/etc/pyweb-popcon.conf <<'END'\n"
           'SUBMIT_URL="http://127.0.0.1:8080/submit"\n'
           f'KEYRING="{KEY}"\n'
           f'KEY_FINGERPRINTS="{fpr}"\n'
           "END")
    reconfigure(box, "true")
    conf = box.out("cat /etc/pyweb-popcon.conf")
    assert conf_value(conf, "PARTICIPATE") == "yes"


def test_not_chosen_the_homes_stay_closed(box, keys):
    """The default: SCAN_HOMES is no, the unit has no capability, and the
    report has nothing of the homes."""
    assert conf_value(box.out("cat /etc/pyweb-popcon.conf"),
                      "SCAN_HOMES") == "no"
    assert "pyweb-popcon/scan-homes: false" in box.out(
        "debconf-show pyweb-popcon")
    assert box.sh(f"test -e {DROPIN}", check=False).returncode != 0
    shown = sandbox(box)
    assert (shown["CapabilityBoundingSet"], shown["AmbientCapabilities"]) \
        == ("", "")
    assert shown["PrivateNetwork"] == "yes"
    score = exposure(box)
    log(f"not chosen: exposure {score}")
    assert score <= 1.0
    assert probe(box) == {"ls /home/alice/.local/lib": False,
                          "ls /root/tools": False,
                          "touch /home/alice/probe": False,
                          "touch /srv/probe": False,
                          'python3 -c "import socket; socket.socket()"': False}
    assert collected(box, keys) == OUTSIDE


def test_a_hand_edit_alone_does_not_open_them(box, keys):
    """SCAN_HOMES="yes" written by hand: the scan looks, but the unit still
    cannot read a 0700 home until dpkg-reconfigure gives it the right."""
    box.sh("sed -i 's/^SCAN_HOMES=.*/SCAN_HOMES=\"yes\"/' "
           "/etc/pyweb-popcon.conf")
    assert sandbox(box)["CapabilityBoundingSet"] == ""
    assert collected(box, keys) == OUTSIDE


def test_chosen_the_unit_reads_them(box, keys):
    """dpkg-reconfigure keeps the hand edit and links the drop-in: the
    report has the homes' frameworks, and the unit only reads more."""
    box.sh("dpkg-reconfigure -fnoninteractive pyweb-popcon")
    assert "pyweb-popcon/scan-homes: true" in box.out(
        "debconf-show pyweb-popcon")
    assert conf_value(box.out("cat /etc/pyweb-popcon.conf"),
                      "SCAN_HOMES") == "yes"
    log("the drop-in:\n" + box.out(f"systemctl cat --no-pager {UNIT} "
                                   "| sed -n '/homes.conf/,$p'"))
    shown = sandbox(box)
    assert shown["CapabilityBoundingSet"] == "cap_dac_read_search"
    assert shown["AmbientCapabilities"] == "cap_dac_read_search"
    assert (shown["PrivateNetwork"], shown["ProtectHome"],
            shown["ProtectSystem"]) == ("yes", "read-only", "strict")
    score = exposure(box)
    log(f"chosen: exposure {score}")
    assert score <= 1.0
    assert probe(box) == {"ls /home/alice/.local/lib": True,
                          "ls /root/tools": True,
                          "touch /home/alice/probe": False,
                          "touch /srv/probe": False,
                          'python3 -c "import socket; socket.socket()"': False}
    assert collected(box, keys) == WITH_HOMES


def test_a_preseeded_no_and_yes(box, keys):
    """The debconf answer switches it both ways; purge leaves no drop-in."""
    reconfigure(box, "false", "scan-homes")
    assert conf_value(box.out("cat /etc/pyweb-popcon.conf"),
                      "SCAN_HOMES") == "no"
    assert box.sh(f"test -e {DROPIN} || test -d {os.path.dirname(DROPIN)}",
                  check=False).returncode != 0
    assert sandbox(box)["CapabilityBoundingSet"] == ""
    assert collected(box, keys) == OUTSIDE
    reconfigure(box, "true", "scan-homes")
    assert sandbox(box)["CapabilityBoundingSet"] == "cap_dac_read_search"
    assert collected(box, keys) == WITH_HOMES
    # Taking part no more takes the right back too.
    reconfigure(box, "false")
    assert sandbox(box)["CapabilityBoundingSet"] == ""
    reconfigure(box, "true")
    box.sh("apt-get purge -y -q pyweb-popcon", timeout=300)
    assert box.out(f"ls -d {os.path.dirname(DROPIN)} 2>/dev/null",
                   check=False).strip() == ""
