"""Consent follows the report, in a booted Debian 12 (issue 11, point 3;
issues 20 and 23: the format that names each entry's Python).

A machine that agreed to the previous release's report (format 1: a
package derived from this tree as that release shipped it, sending format
1 with no words for anything newer) is upgraded to this tree's packages,
which send a wider format: the timer stops and nothing is sent, and
`pyweb-popcon status` says why, until dpkg-reconfigure shows the question
with this tree's words for what is new and the administrator answers yes;
from then on reports are of the new format.  Then two packages derived
from this tree: one whose format sends nothing more (the answer stands,
reports keep going), and one that also sends "the number of CPU cores",
where the administrator says no and the machine stops taking part, until
the ordinary question is answered yes again.  A stand-in server takes the
reports (202 and a receipt) and logs each one; between sends, the state is
moved a week back, as if the timer's week had passed (the client sends at
most once in 6 days).

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
from pyweb_popcon.report import FORMAT

pytestmark = [skip_unless_able, pytest.mark.timeout(1800)]
LISTEN = "127.0.0.1:8080"
# The previous release sent format 1; this tree sends FORMAT.
PREVIOUS = 1
with open(os.path.join(TOP, "debian/changelog")) as f:
    VERSION = re.match(r"\S+ \(([^)]+)\)", f.readline()).group(1)
SAME, WIDER = FORMAT + 1, FORMAT + 2
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
    given; the question's words for formats after `format_` are left out,
    as a release before them had none; its path."""
    tree = os.path.join(top, f"src-{format_}")
    os.makedirs(tree)
    tar = subprocess.Popen(["tar", "-C", TOP, "--exclude-vcs",
                            "--exclude=__pycache__", "--exclude=.pytest_cache",
                            "--exclude=./build", "-cf", "-", "."],
                           stdout=subprocess.PIPE)
    subprocess.run(["tar", "-C", tree, "-xf", "-"], stdin=tar.stdout,
                   check=True)
    assert tar.wait() == 0

    def edit(path, old, new, count=1):
        path = os.path.join(tree, path)
        with open(path) as f:
            text = f.read()
        assert len(re.findall(old, text, re.M)) == count, (path, old)
        with open(path, "w") as f:
            f.write(re.sub(old, new, text, flags=re.M))

    edit("src/pyweb_popcon/report.py", rf"^FORMAT = {FORMAT}$",
         f"FORMAT = {format_}")
    for script in ("pyweb-popcon.config", "pyweb-popcon.postinst"):
        edit(f"debian/{script}", rf"^report_format={FORMAT}$",
             f"report_format={format_}")
    newer = range(format_ + 1, FORMAT + 1)
    if newer:
        edit("debian/pyweb-popcon.config",
             rf"^\t\t({'|'.join(map(str, newer))})\) echo .*\n", "",
             count=len(newer))
    if added:
        edit("debian/pyweb-popcon.config", r"^\tcase \$1 in\n",
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
    """{format: directory of its .deb files}: the previous release
    (PREVIOUS), and after this tree's format one that sends no more
    (SAME) and one that sends the CPU cores too (WIDER)."""
    top = tempfile.mkdtemp(prefix="pyweb-popcon-formats.", dir="/var/tmp")
    try:
        out = {}
        for format_, version, added in (
                (PREVIOUS, f"{VERSION}~f{PREVIOUS}", None),
                (SAME, f"{VERSION}+f{SAME}", None),
                (WIDER, f"{VERSION}+f{WIDER}", ADDED)):
            tree = derived_tree(top, version, format_, added)
            out[format_] = os.path.join(top, f"debs-{format_}")
            # nocheck: a derived tree's unit tests are this tree's, run
            # by the debs fixture's build (format 1's fail, as they should).
            run("env", "DEB_BUILD_OPTIONS=nocheck",
                os.path.join(tree, "tests/package/build-deb"),
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


def said(script, format_):
    """What the question says format `format_` adds, from this tree's
    config script (the words the upgrade must show)."""
    with open(os.path.join(TOP, "debian", script)) as f:
        return re.search(rf'^\t\t{format_}\) echo "(.*)" ;;$', f.read(),
                         re.M).group(1)


def question(box, answers):
    """dpkg-reconfigure at a terminal, answering `answers` in turn; what it
    showed, as one line."""
    shown = box.sh("DEBIAN_FRONTEND=teletype dpkg-reconfigure pyweb-popcon",
                   input="".join(a + "\n" for a in answers)).stdout
    log("the question:\n" + shown)
    return " ".join(shown.split())


def test_opted_in_on_the_previous_format(machine):
    box = machine
    install(box, f"/srv/format-{PREVIOUS}")
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
    assert answer(box) == ("yes", str(PREVIOUS))
    assert f"pyweb-popcon/consented-format: {PREVIOUS}" in box.out(
        "debconf-show pyweb-popcon")
    assert timer_state(box) == ("enabled", "active")
    assert send(box) == ["success", "success"]
    assert posts(box) == 1
    assert sent_format(box) == PREVIOUS


def test_the_upgrade_to_this_format_stops_everything_until_agreed(machine):
    box = machine
    install(box, "/srv/debs")
    log(f"upgraded to format {FORMAT}")
    # The answer given is kept, for the format it was given for.
    assert answer(box) == ("yes", str(PREVIOUS))
    assert timer_state(box) == ("disabled", "inactive")
    status = box.out("pyweb-popcon status")
    assert ("Participating: no (PARTICIPATE is yes, but for report format "
            f"{PREVIOUS} (/etc/pyweb-popcon.conf:") in status, status
    assert f"this version sends format {FORMAT}: nothing is sent until " \
        "dpkg-reconfigure pyweb-popcon" in status
    # A week on, started by hand anyway: both units succeed, and nothing
    # is collected or sent.
    assert send(box) == ["success", "success"]
    assert posts(box) == 1
    assert box.out("find /var/lib/pyweb-popcon/outbox -type f",
                   check=False) == ""
    journal = box.out("journalctl --no-pager -o cat -u pyweb-popcon.service "
                      "-u pyweb-popcon-collect.service | tail -n 4")
    assert "not participating: PARTICIPATE is yes, but for report format " \
        f"{PREVIOUS}" in journal


def test_the_question_names_the_python_field_and_yes_sends_it(machine):
    box = machine
    # The administrator at a terminal: the question, the answer yes (and
    # no to the question on home directories that follows a yes).
    shown = question(box, ["yes", "no"])
    assert "Keep sending the weekly report, which would now contain more?" \
        in shown
    new = " ".join(said("pyweb-popcon.config", f)
                   for f in range(PREVIOUS + 1, FORMAT + 1))
    assert f"It would also send: {new}." in shown
    # Those words name what format 2 added: the Python and the new vias.
    for words in ("which Python version", "conda environments",
                  "pip --target", "pip --user"):
        assert words in new
    assert answer(box) == ("yes", str(FORMAT))
    assert timer_state(box) == ("enabled", "active")
    assert "Participating: yes" in box.out("pyweb-popcon status")
    assert send(box) == ["success", "success"]
    assert posts(box) == 2
    assert sent_format(box) == FORMAT


def test_an_upgrade_that_sends_no_more_keeps_the_answer(machine):
    box = machine
    install(box, f"/srv/format-{SAME}")
    assert answer(box) == ("yes", str(SAME))
    assert timer_state(box) == ("enabled", "active")
    assert "Participating: yes" in box.out("pyweb-popcon status")
    assert send(box) == ["success", "success"]
    assert posts(box) == 3
    assert sent_format(box) == SAME


def test_a_wider_report_stops_everything_until_agreed(machine):
    box = machine
    install(box, f"/srv/format-{WIDER}")
    log(f"upgraded to format {WIDER}")
    assert answer(box) == ("yes", str(SAME))
    assert timer_state(box) == ("disabled", "inactive")
    status = box.out("pyweb-popcon status")
    assert ("Participating: no (PARTICIPATE is yes, but for report format "
            f"{SAME} (/etc/pyweb-popcon.conf:") in status, status
    assert f"this version sends format {WIDER}: nothing is sent until " \
        "dpkg-reconfigure pyweb-popcon" in status
    assert send(box) == ["success", "success"]
    assert posts(box) == 3
    assert box.out("find /var/lib/pyweb-popcon/outbox -type f",
                   check=False) == ""
    journal = box.out("journalctl --no-pager -o cat -u pyweb-popcon.service "
                      "-u pyweb-popcon-collect.service | tail -n 4")
    assert "not participating: PARTICIPATE is yes, but for report format " \
        f"{SAME}" in journal


def test_the_question_names_what_is_new_and_no_stops_taking_part(machine):
    box = machine
    shown = question(box, ["no"])
    assert "Keep sending the weekly report, which would now contain more?" \
        in shown
    assert f"It would also send: {ADDED}." in shown
    assert answer(box) == ("no", str(SAME))
    assert timer_state(box) == ("disabled", "inactive")
    assert "Participating: no (PARTICIPATE is no" in box.out(
        "pyweb-popcon status")
    assert send(box) == ["success", "success"]
    assert posts(box) == 3
    # And later the usual question again: its yes is to what is sent now.
    reconfigure(box, "true")
    assert timer_state(box) == ("enabled", "active")
    assert answer(box) == ("yes", str(WIDER))
    assert send(box) == ["success", "success"]
    assert posts(box) == 4
    assert sent_format(box) == WIDER
    reconfigure(box, "false")
    assert timer_state(box) == ("disabled", "inactive")
    reconfigure(box, "true")
    assert timer_state(box) == ("enabled", "active")
    assert answer(box) == ("yes", str(WIDER))
