"""Consent follows the report, in a booted Debian 12 (issue 11, point 3).

An opted-in machine is upgraded twice, to packages built here from copies
of this tree: first to a report format that sends nothing more (the answer
stands, reports keep going), then to one that also sends "the number of
CPU cores".  That upgrade stops the timer and sends nothing, and
`pyweb-popcon status` says why, until dpkg-reconfigure shows the question
naming the new field and the administrator answers yes.  A stand-in
server takes the reports (202 and a receipt) and logs each one; between
sends, the state is moved a week back, as if the timer's week had passed
(the client sends at most once in 6 days).

The tests run in file order on one container of their own.
"""

import os
import re
import shutil
import subprocess
import tempfile
import time

import pytest

from booted import (TOP, boot, built, conf_value, discard, log,  # noqa: F401
                    reconfigure, run, skip_unless_able, timer_state)

pytestmark = [skip_unless_able, pytest.mark.timeout(1800)]
LISTEN = "127.0.0.1:8080"
ADDED = "the number of CPU cores"
STAND_IN = """\
import http.server, itertools, sys
numbers = itertools.count(1)
class Taker(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        body = b'{"status": "ok", "receipt": "r%d"}' % next(numbers)
        self.send_response(202)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Taker).serve_forever()
"""


def derived_tree(top, version, format_, added=None):
    """A copy of this tree whose packages are `version` and send report
    format `format_`, which adds `added` (words for the question) if
    given; its path."""
    tree = os.path.join(top, f"src-{format_}")
    os.makedirs(tree)
    tar = subprocess.Popen(["tar", "-C", TOP, "--exclude-vcs",
                            "--exclude=__pycache__", "--exclude=.pytest_cache",
                            "--exclude=./build", "-cf", "-", "."],
                           stdout=subprocess.PIPE)
    subprocess.run(["tar", "-C", tree, "-xf", "-"], stdin=tar.stdout,
                   check=True)
    assert tar.wait() == 0

    def edit(path, old, new):
        path = os.path.join(tree, path)
        with open(path) as f:
            text = f.read()
        assert old in text, (path, old)
        with open(path, "w") as f:
            f.write(text.replace(old, new, 1))

    edit("src/pyweb_popcon/report.py", "\nFORMAT = 1\n",
         f"\nFORMAT = {format_}\n")
    for script in ("pyweb-popcon.config", "pyweb-popcon.postinst"):
        edit(f"debian/{script}", "\nreport_format=1\n",
             f"\nreport_format={format_}\n")
    if added:
        edit("debian/pyweb-popcon.config", "\tcase $1 in\n",
             f"\tcase $1 in\n\t\t{format_}) echo \"{added}\" ;;\n")
    with open(os.path.join(tree, "debian/changelog")) as f:
        changelog = f.read()
    with open(os.path.join(tree, "debian/changelog"), "w") as f:
        f.write(f"pyweb-popcon ({version}) unstable; urgency=medium\n\n"
                f"  * Report format {format_} (a test build).\n\n"
                " -- pyweb-popcon developers <pyweb-popcon@lists.example.org>"
                "  Sun, 29 Nov 2026 12:00:00 +0000\n\n" + changelog)
    return tree


@pytest.fixture(scope="module")
def upgrades():
    """{format: directory of its .deb files}, for formats 2 (no more sent)
    and 3 (the CPU cores too)."""
    top = tempfile.mkdtemp(prefix="pyweb-popcon-formats.", dir="/var/tmp")
    try:
        out = {}
        for format_, version, added in ((2, "0.1.0+f2", None),
                                        (3, "0.1.0+f3", ADDED)):
            tree = derived_tree(top, version, format_, added)
            out[format_] = os.path.join(top, f"debs-{format_}")
            run(os.path.join(tree, "tests/package/build-deb"),
                os.path.join(top, f"build-{format_}"), out[format_],
                timeout=900)
            log(f"built format {format_} as {version}")
        yield out
    finally:
        shutil.rmtree(top, ignore_errors=True)


@pytest.fixture(scope="module")
def machine(built, upgrades):  # noqa: F811
    started = time.monotonic()
    c, tree = boot(*built)
    try:
        for format_, debs in upgrades.items():
            shutil.copytree(debs, os.path.join(tree, f"srv/format-{format_}"))
        yield c
    finally:
        discard(c, tree)
        log("consent test done in "
            f"{time.monotonic() - started:.0f} s")


def answer(box):
    """(PARTICIPATE, CONSENTED_FORMAT) as the configuration file says."""
    conf = box.out("cat /etc/pyweb-popcon.conf")
    return conf_value(conf, "PARTICIPATE"), conf_value(conf,
                                                       "CONSENTED_FORMAT")


def install(box, directory):
    box.sh("apt-get install -y -q --no-install-recommends "
           f"{directory}/python3-pyweb-popcon_*_all.deb "
           f"{directory}/pyweb-popcon_*_all.deb", timeout=900)


def posts(box):
    """How many reports the stand-in server has been sent."""
    return len(re.findall(r'"POST /submit ', box.out(
        "journalctl --no-pager -o cat -u stand-in-server.service")))


def send(box):
    """A week later, the weekly job as the timer runs it; the units'
    results."""
    box.sh("python3 - <<'END'\n"
           "import datetime, json\n"
           "path = '/var/lib/pyweb-popcon/state.json'\n"
           "try:\n"
           "    state = json.load(open(path))\n"
           "except FileNotFoundError:\n"
           "    raise SystemExit\n"
           "for key in ('last_attempt', 'last_success'):\n"
           "    if state.get(key):\n"
           "        state[key] = (datetime.datetime.fromisoformat(state[key])"
           " - datetime.timedelta(days=7)).isoformat()\n"
           "json.dump(state, open(path, 'w'))\n"
           "END\n"
           "systemctl start pyweb-popcon.service", timeout=400)
    return [box.out(f"systemctl show -p Result --value {unit}").strip()
            for unit in ("pyweb-popcon-collect.service",
                         "pyweb-popcon.service")]


def sent_format(box):
    return int(re.search(r'"format": (\d+)', box.out(
        "pyweb-popcon history 1")).group(1))


def test_opted_in_on_format_1(machine):
    box = machine
    install(box, "/srv/debs")
    # A throw-away key for the reports, and a server that takes them.
    box.sh("cat > /root/stand-in.py <<'END'\n" + STAND_IN + "END\n"
           "export GNUPGHOME=$(mktemp -d)\n"
           "gpg --batch --pinentry-mode loopback --passphrase '' "
           "--quick-gen-key 'consent test' default default never\n"
           "gpg --armor --export > /etc/pyweb-popcon-test-key.asc\n"
           "fpr=$(gpg --with-colons --list-keys | "
           "awk -F: '/^fpr/ { print $10; exit }')\n"
           "cat >>/etc/pyweb-popcon.conf <<END\n"
           f'SUBMIT_URL="http://{LISTEN}/submit"\n'
           'KEYRING="/etc/pyweb-popcon-test-key.asc"\n'
           'KEY_FINGERPRINTS="$fpr"\n'
           "END\n"
           "systemd-run --quiet --unit=stand-in-server python3 "
           f"/root/stand-in.py {LISTEN.rsplit(':', 1)[1]}\n"
           "for i in $(seq 50); do python3 -c 'import socket; "
           f"socket.create_connection((\"127.0.0.1\", 8080), 1)' "
           "2>/dev/null && break; sleep 0.2; done")
    reconfigure(box, "true")
    assert answer(box) == ("yes", "1")
    assert "pyweb-popcon/consented-format: 1" in box.out(
        "debconf-show pyweb-popcon")
    assert timer_state(box) == ("enabled", "active")
    assert send(box) == ["success", "success"]
    assert posts(box) == 1
    assert sent_format(box) == 1


def test_an_upgrade_that_sends_no_more_keeps_the_answer(machine):
    box = machine
    install(box, "/srv/format-2")
    assert answer(box) == ("yes", "2")
    assert timer_state(box) == ("enabled", "active")
    assert "Participating: yes" in box.out("pyweb-popcon status")
    assert send(box) == ["success", "success"]
    assert posts(box) == 2
    assert sent_format(box) == 2


def test_a_wider_report_stops_everything_until_agreed(machine):
    box = machine
    install(box, "/srv/format-3")
    log("upgraded to format 3")
    # The answer given is kept, for the format it was given for.
    assert answer(box) == ("yes", "2")
    assert timer_state(box) == ("disabled", "inactive")
    status = box.out("pyweb-popcon status")
    assert ("Participating: no (PARTICIPATE is yes, but for report format 2 "
            "(/etc/pyweb-popcon.conf:") in status, status
    assert "this version sends format 3: nothing is sent until " \
        "dpkg-reconfigure pyweb-popcon" in status
    # A week on, started by hand anyway: both units succeed, and nothing
    # is collected or sent.
    assert send(box) == ["success", "success"]
    assert posts(box) == 2
    assert box.out("find /var/lib/pyweb-popcon/outbox -type f",
                   check=False) == ""
    journal = box.out("journalctl --no-pager -o cat -u pyweb-popcon.service "
                      "-u pyweb-popcon-collect.service | tail -n 4")
    assert "not participating: PARTICIPATE is yes, but for report format 2" \
        in journal


def test_the_question_names_what_is_new_and_yes_turns_it_back_on(machine):
    box = machine
    # The administrator at a terminal: the question, and the answer yes.
    shown = box.sh("DEBIAN_FRONTEND=teletype dpkg-reconfigure pyweb-popcon",
                   input="yes\n").stdout
    log("the question:\n" + shown)
    assert "Keep sending the weekly report, which would now contain more?" \
        in shown
    assert f"It would also send: {ADDED}." in " ".join(shown.split())
    assert answer(box) == ("yes", "3")
    assert timer_state(box) == ("enabled", "active")
    assert "Participating: yes" in box.out("pyweb-popcon status")
    assert send(box) == ["success", "success"]
    assert posts(box) == 3
    assert sent_format(box) == 3
    # And later reconfigurations ask the usual question again.
    reconfigure(box, "false")
    assert timer_state(box) == ("disabled", "inactive")
    reconfigure(box, "true")
    assert timer_state(box) == ("enabled", "active")
    assert answer(box) == ("yes", "3")
