"""The receiver's front door in a booted Debian 12 (issue 10): the packages
with nginx and ssl-cert, the shipped site enabled as pyweb-popcon-server(8)
says, the client submitting over https to it, then slow clients, a flood
and hostile requests, and afterwards no trace of the sender's address.

The container has a network of its own (--private-network): nginx on 80
and 443 and the receiver on 8080 meet nothing else on this machine, and
every connection in it comes from 127.0.0.2 (the loopback route's source
address is changed), the address looked for in the end.  With no network,
packages are installed from the archive cache, which a first container
with the network fills when something is missing.  The tests run in file
order on one container.
"""

import json
import re

import pytest

from booted import (OUTPUT, SPOOL, boot, built, discard,  # noqa: F401
                    log, places_with, reconfigure, skip_unless_able)

pytestmark = skip_unless_able
PACKAGES = ("/srv/debs/python3-pyweb-popcon_*_all.deb "
            "/srv/debs/pyweb-popcon_*_all.deb "
            "/srv/debs/pyweb-popcon-server_*_all.deb nginx ssl-cert")
SITE = "/etc/nginx/sites-available/pyweb-popcon-server"
NAME = "receiver.test"
CERT, KEY = f"/etc/ssl/certs/{NAME}.pem", f"/etc/ssl/private/{NAME}.key"
CA = "/etc/ssl/pyweb-popcon-test-ca.pem"
ADDRESS = "127.0.0.2"
CLIENTS = "python3 /srv/src/tests/front_clients.py"
BODY = "/root/body.asc"


def install(box):
    """apt-get install from the archive cache (there is no network to
    fetch what is missing; --no-download refuses local .deb files)."""
    return box.sh("apt-get install -y -q -o Acquire::Retries=0 "
                  f"--no-install-recommends {PACKAGES}", check=False,
                  timeout=900)


@pytest.fixture(scope="module")
def box(built):
    c, tree = boot(*built, nspawn_args=("--private-network",))
    try:
        if install(c).returncode != 0:
            log("filling the archive cache in a container with network")
            helper, helper_tree = boot(*built)
            try:
                # What apt would install, by name (--download-only
                # refuses local .deb files).
                helper.sh("apt-get install -s -y --no-install-recommends "
                          f"{PACKAGES} "
                          "| sed -n 's/^Inst \\([^ ]*\\) .*/\\1/p' "
                          "| grep -v pyweb-popcon | xargs apt-get install "
                          "--download-only -y -q --no-install-recommends",
                          timeout=900)
            finally:
                discard(helper, helper_tree)
            done = install(c)
            assert done.returncode == 0, done.stdout[-3000:] + done.stderr
        log("packages and nginx installed")
        yield c
    finally:
        discard(c, tree)


def clients(box, command):
    """front_clients.py in the container, its JSON answer."""
    return json.loads(box.out(f"{CLIENTS} --host {NAME} --cafile {CA} "
                              f"{command}", timeout=300))


def incoming(box):
    return set(box.out(f"ls {SPOOL}/incoming").split())


# -- the story ----------------------------------------------------------------

def test_enable_the_site_as_documented(box):
    """The site is in place as a conffile; nginx refuses it beside its
    example site (two default servers); the documented commands enable
    it; it answers https with the snakeoil certificate and redirects
    http."""
    assert SITE in box.out("dpkg-query --control-show pyweb-popcon-server "
                           "conffiles")
    box.sh(f"ln -s ../sites-available/pyweb-popcon-server "
           "/etc/nginx/sites-enabled/")
    refused = box.sh("nginx -t", check=False)
    assert refused.returncode != 0
    assert "duplicate default server" in refused.stderr
    box.sh("rm -f /etc/nginx/sites-enabled/default")
    box.sh(f"echo '127.0.0.1 {NAME}' >> /etc/hosts")
    # The snakeoil certificate answers https; http is redirected.
    reload_nginx(box, "import http.client, ssl\n"
                 f"c = http.client.HTTPSConnection('{NAME}', "
                 "context=ssl._create_unverified_context())\n"
                 "c.request('GET', '/health')\n"
                 "assert c.getresponse().status == 200\n"
                 f"c = http.client.HTTPConnection('{NAME}')\n"
                 "c.request('GET', '/stats.json')\n"
                 "r = c.getresponse()\n"
                 "assert r.status == 301, r.status\n"
                 "assert r.headers['Location'] == "
                 f"'https://{NAME}/stats.json'")
    # Every connection from now on comes from 127.0.0.2.
    for route in ("127.0.0.0/8", "127.0.0.1"):
        box.sh(f"ip route replace table local local {route} dev lo "
               f"proto kernel scope host src {ADDRESS}")
    assert f"src {ADDRESS}" in box.out("ip route get 127.0.0.1")
    # A certificate of the test's own for receiver.test, put in as the
    # man page says, and trusted by the client through CA_FILE.
    box.sh(f"openssl req -x509 -newkey ec -pkeyopt "
           f"ec_paramgen_curve:prime256v1 -nodes -days 2 -keyout {KEY} "
           f"-out {CERT} -subj /CN={NAME} "
           f"-addext subjectAltName=DNS:{NAME} 2>/dev/null\n"
           f"cp {CERT} {CA}\n"
           f"sed -i -e 's|/etc/ssl/certs/ssl-cert-snakeoil.pem|{CERT}|' "
           f"-e 's|/etc/ssl/private/ssl-cert-snakeoil.key|{KEY}|' {SITE}\n"
           "nginx -t 2>/dev/null")
    reload_nginx(box, "import http.client, ssl\n"
                 f"c = http.client.HTTPSConnection('{NAME}', context="
                 f"ssl.create_default_context(cafile='{CA}'))\n"
                 "c.request('GET', '/health')\n"
                 "assert c.getresponse().status == 200")


def reload_nginx(box, check):
    """systemctl reload nginx, then wait until the Python `check` passes:
    a reload returns at once, and the old workers answer a moment longer."""
    box.sh(f"cat > /root/check.py <<'END'\n{check}\nEND\n"
           "systemctl reload nginx\n"
           "for i in $(seq 100); do\n"
           "  python3 /root/check.py 2>/dev/null && exit 0; sleep 0.1\n"
           "done\n"
           "python3 /root/check.py")


def test_client_submits_over_https(box):
    """The client's units send to https://receiver.test/submit through
    the front, trusting CA_FILE; status shows the receipt; the page it
    ends in is served by nginx."""
    box.sh("mkdir -p /etc/pyweb-popcon-server.conf.d\n"
           "echo 'MIN_HOSTS=\"1\"' >"
           " /etc/pyweb-popcon-server.conf.d/system-test.conf")
    fpr = re.search(r"[0-9A-F]{40}", box.out(
        "pyweb-popcon-server keygen --export "
        "/etc/pyweb-popcon-test-key.asc")).group()
    box.sh("cat >>/etc/pyweb-popcon.conf <<'END'\n"
           f'SUBMIT_URL="https://{NAME}/submit"\n'
           'KEYRING="/etc/pyweb-popcon-test-key.asc"\n'
           f'KEY_FINGERPRINTS="{fpr}"\n'
           f'CA_FILE="{CA}"\n'
           "END")
    reconfigure(box, "true")
    box.sh("systemctl start pyweb-popcon.service", timeout=400)
    journal = box.out("journalctl --no-pager -o cat -u pyweb-popcon.service")
    sent = re.search(rf"report sent to https://{NAME}/submit: receipt "
                     r"([0-9a-f]{32})", journal)
    assert sent, journal
    status = box.out("pyweb-popcon status")
    log("status:\n" + status)
    assert re.search(rf"Last success: .* \(receipt {sent.group(1)}\)",
                     status), status
    box.sh("systemctl start pyweb-popcon-ingest.service "
           "pyweb-popcon-aggregate.service", timeout=300)
    box.sh(f"python3 - <<'END'\n"
           "import json, ssl, urllib.request\n"
           f"ctx = ssl.create_default_context(cafile='{CA}')\n"
           f"page = urllib.request.urlopen('https://{NAME}/stats.json', "
           "context=ctx)\n"
           "assert page.headers['Cache-Control'] == 'max-age=3600'\n"
           "assert json.load(page)['hosts'] == 1\n"
           "END")
    # What was received stays in the spool from here on, to be looked at.
    box.sh("systemctl stop pyweb-popcon-ingest.path "
           "pyweb-popcon-ingest.timer")
    box.sh("GNUPGHOME=$(mktemp -d) && export GNUPGHOME && "
           "gpg -q --batch --import /etc/pyweb-popcon-test-key.asc && "
           f"echo 'a test' | gpg -q --batch --trust-model always -e -a "
           f"-r {fpr} > {BODY} && gpgconf --kill all && rm -rf $GNUPGHOME")


def test_gunicorn_alone_is_held_up(box):
    """The control: half-sent requests straight to gunicorn, 20 more at a
    time, and it soon answers nothing more, well before 500 (nginx is what
    protects it)."""
    said = clients(box, "starve 127.0.0.1:8080")
    log(f"gunicorn alone stops answering at {said['stalled']} stalled "
        "requests")
    assert said["stalled"] is not None


def test_slow_clients_do_not_hold_up_submissions(box):
    """500 connections that stall or trickle; meanwhile submissions get
    their 202 within a second each, on disk; nginx drops the stalled
    headers after its timeout and keeps waiting for the trickling bodies."""
    said = clients(box, f"stall --count 500 --hold 12 {BODY}")
    log(f"500 slow connections: {said}")
    kinds = ("silent", "request line", "header", "trickle")
    assert said["opened"] == said["during"] == dict.fromkeys(kinds, 125)
    assert len(said["submissions"]) == 5
    for status, receipt, seconds in said["submissions"]:
        assert status == 202 and seconds < 1.0, said["submissions"]
    assert {r for _, r, _ in said["submissions"]} <= incoming(box)
    assert said["after"] == {"silent": 0, "request line": 0, "header": 0,
                             "trickle": 125}


def test_flood_is_refused_at_once(box):
    """100 clients posting as fast as they can, with the receiver frozen
    for 3 s in the middle: every request is answered, 202 or 503 with
    Retry-After, none waits long, and every 202 is a file in the spool."""
    box.sh(f"{CLIENTS} --host {NAME} --cafile {CA} flood --clients 100 "
           f"--seconds 8 {BODY} > /root/flood.json 2>&1 &\n"
           "sleep 2\n"
           "systemctl kill --signal=SIGSTOP pyweb-popcon-receiver.service\n"
           "sleep 3\n"
           "systemctl kill --signal=SIGCONT pyweb-popcon-receiver.service\n"
           "wait", timeout=120)
    results = json.loads(box.out("cat /root/flood.json"))
    counts = {}
    for status, retry_after, _, _ in results:
        counts[status] = counts.get(status, 0) + 1
        if status == 503:
            assert retry_after == "30"
    slowest = max(seconds for *_, seconds in results)
    log(f"flood: {counts}, slowest answer {slowest:.2f} s")
    assert set(counts) == {202, 503}, counts
    assert slowest < 15         # the receiver's freeze, not a hang
    receipts = {receipt for status, _, receipt, _ in results
                if status == 202}
    on_disk = incoming(box)
    assert receipts <= on_disk, len(receipts - on_disk)
    size = int(box.out(f"stat -c %s {BODY}"))
    sizes = box.out(f"cd {SPOOL}/incoming && stat -c %s "
                    + " ".join(sorted(receipts)[:200])).split()
    assert set(sizes) == {str(size)}


def test_hostile_requests(box):
    said = clients(box, f"hostile {BODY}")
    log(f"hostile requests: {said}")
    assert said["forged headers"][0] == 202
    for name, status in (("GET /submit", 405), ("PUT /submit", 405),
                         ("POST /health", 405), ("not published", 404),
                         ("wrong type", 415), ("not ciphertext", 400),
                         ("too large", 413), ("too large, chunked", 413),
                         ("long URI", 414), ("huge header", 400)):
        assert said[name][0] == status, name
    assert said["HTTP on 80"] == "HTTP/1.1 301 Moved Permanently"
    assert said["plain HTTP on 443"] == "HTTP/1.1 400 Bad Request"


def test_no_address_anywhere(box):
    """After all of the above, 127.0.0.2 is nowhere: not under /var (logs,
    spool, database, published output, nginx's state), /etc, /run, /tmp,
    /root, nor in the journal.  The search itself is checked first: an
    address planted in a log file and in the journal is found."""
    box.sh("echo 'planted 127.0.0.3' >> /var/log/planted.log\n"
           "echo 'planted 127.0.0.3' | systemd-cat -t planted")
    files, journal = places_with(box, "127.0.0.3")
    assert "/var/log/planted.log" in files and journal, (files, journal)
    box.sh("rm /var/log/planted.log")
    # The things that were looked at, there to be looked at.
    assert box.out(f"ls {SPOOL}/incoming | wc -l").strip() != "0"
    box.sh(f"test -s {OUTPUT}/stats.json && "
           "test -s /var/lib/pyweb-popcon-server/popcon.sqlite3 && "
           "test -e /var/log/nginx/error.log")
    assert places_with(box, ADDRESS) == ([], False)


def test_purge_removes_the_site(box):
    """apt purge: the site and the link enabling it are gone, and nginx,
    reloaded, runs on without them."""
    box.sh("rm -f /etc/pyweb-popcon-server.conf.d/system-test.conf")
    box.sh("apt-get purge -y -q pyweb-popcon pyweb-popcon-server "
           "python3-pyweb-popcon", timeout=300)
    assert box.out("ls /etc/nginx/sites-available /etc/nginx/sites-enabled"
                   ).split() == ["/etc/nginx/sites-available:", "default",
                                 "/etc/nginx/sites-enabled:"]
    box.sh("nginx -t 2>/dev/null && systemctl is-active nginx")
    assert "pyweb" not in box.out("nginx -T 2>/dev/null")
