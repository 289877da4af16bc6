"""A booted Debian with systemd, for the system tests (tests/system/).

The release is PYWEB_POPCON_RELEASE's (bookworm, Debian 12, unless it says
trixie or sid): a debootstrap --variant=minbase tree of it is made once and
cached
outside the repository (PYWEB_POPCON_TEST_CACHE, default
/var/cache/pyweb-popcon-tests), copied fresh for each container and booted
with ``systemd-nspawn --register=no --keep-unit -b``.  With --register=no
there is no machined, so ``machinectl``/``systemd-run -M`` cannot reach it:
commands enter the container's namespaces with ``nsenter -t LEADER -a``,
the leader being the nspawn process's child (the container's systemd, PID
1 inside).  The packages built from this tree (the `debs` fixture of
tests/conftest.py) are bound at /srv/debs, the source at /srv/src.

Needs root with systemd-nspawn, nsenter and debootstrap: `skip_unless_able`
says why not otherwise.
"""


import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("PYWEB_POPCON_TEST_CACHE",
                       "/var/cache/pyweb-popcon-tests")
RELEASE = os.environ.get("PYWEB_POPCON_RELEASE", "bookworm")
BASE = os.path.join(CACHE, f"{RELEASE}-minbase")
# systemd 258 on (sid) boots on the unified cgroup hierarchy only, which
# nspawn gives it on a host with the hybrid one when asked.
UNIFIED = ({} if RELEASE in ("bookworm", "trixie")
           else {"SYSTEMD_NSPAWN_UNIFIED_HIERARCHY": "1"})
# Downloaded packages, kept for later runs: one release's each.
ARCHIVES = os.path.join(CACHE, f"apt-archives-{RELEASE}")
WHEELS = os.path.join(CACHE, "wheels")
MIRROR = os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")
DEBIAN_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
INCLUDE = "systemd,systemd-sysv,dbus,apt,ca-certificates,python3"
CLIENT_UNITS = ("pyweb-popcon-collect.service", "pyweb-popcon.service")
SERVER_UNITS = ("pyweb-popcon-receiver.service", "pyweb-popcon-ingest.service",
                "pyweb-popcon-expire.service", "pyweb-popcon-aggregate.service")
LISTEN = "127.0.0.1:8080"
SPOOL = "/var/spool/pyweb-popcon-server"
OUTPUT = "/var/lib/pyweb-popcon-server/www"
DATABASE = "/var/lib/pyweb-popcon-server/popcon.sqlite3"
T0 = time.monotonic()


def env():
    return dict(os.environ, PATH=DEBIAN_PATH, LC_ALL="C.UTF-8",
                PYTHONPATH="")


def why_not():
    """The reason this machine cannot run the test, or None."""
    if os.geteuid() != 0:
        return "the system test needs root (systemd-nspawn, debootstrap)"
    for tool in ("systemd-nspawn", "nsenter", "debootstrap",
                 "dpkg-buildpackage"):
        if not shutil.which(tool, path=DEBIAN_PATH):
            return f"{tool} is not installed (make deps installs it)"
    if not os.path.isdir("/sys/fs/cgroup"):
        return "no cgroup file system for systemd-nspawn"
    return None


skip_unless_able = pytest.mark.skipif(why_not() is not None,
                                      reason=str(why_not()))


def log(message):
    print(f"[system {time.monotonic() - T0:6.1f}s] {message}",
          file=sys.stderr, flush=True)


def run(*argv, timeout=600, check=True, **kw):
    done = subprocess.run(argv, env=env(), capture_output=True, text=True,
                          timeout=timeout, **kw)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} -> {done.returncode}\n"
                             f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done


# -- the cached base tree, the packages, the Django wheel ----------------------

def cached_tree(name, make):
    """CACHE/name, made by `make`(a new directory) when missing, under the
    cache's lock, and kept for later runs."""
    os.makedirs(CACHE, exist_ok=True)
    import fcntl
    path = os.path.join(CACHE, name)
    with open(os.path.join(CACHE, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(os.path.join(path, ".complete")):
            log(f"making {path}")
            new = path + ".new"
            shutil.rmtree(new, ignore_errors=True)
            make(new)
            open(os.path.join(new, ".complete"), "w").close()
            shutil.rmtree(path, ignore_errors=True)
            os.rename(new, path)
    return path


def base_tree():
    """The cached minbase tree, made (about a minute) when missing."""
    return cached_tree(os.path.basename(BASE), _make_base)


def _make_base(new):
    run("debootstrap", "--variant=minbase", f"--include={INCLUDE}",
        RELEASE, new, MIRROR, timeout=1200)
    # apt's sources and lists in the cache, so that runs only download
    # the packages they install.
    with open(os.path.join(new, "etc/apt/sources.list"), "w") as f:
        f.write(sources_list(RELEASE))
    accept_stale_release(new)
    run("chroot", new, "apt-get", "update", "-q", timeout=600)
    # An empty machine-id: each copy gets its own at first boot.
    with open(os.path.join(new, "etc/machine-id"), "w"):
        pass


def sources_list(release):
    """apt's sources for a release: a stable one's updates and security
    fixes too; unstable has neither."""
    if release in ("sid", "unstable"):
        return f"deb {MIRROR} {release} main\n"
    return (f"deb {MIRROR} {release} main\n"
            f"deb {MIRROR} {release}-updates main\n"
            "deb http://deb.debian.org/debian-security "
            f"{release}-security main\n")


def accept_stale_release(tree):
    """apt in the tree takes a Release file past its Valid-Until: sid's
    lasts a week, and a mirror (or the snapshot this machine reaches) may
    lag behind."""
    with open(os.path.join(tree, "etc/apt/apt.conf.d/99valid-until"),
              "w") as f:
        f.write('Acquire::Check-Valid-Until "false";\n')


def wheel(pattern, requirement):
    """A wheel matching `pattern`, downloaded once (`requirement`) into the
    cache, which containers see as /srv/wheels."""
    found = sorted(glob.glob(os.path.join(WHEELS, pattern)))
    if not found:
        os.makedirs(WHEELS, exist_ok=True)
        run("/usr/bin/python3", "-m", "pip", "download", "--no-deps",
            "--only-binary=:all:", "-d", WHEELS, requirement, timeout=300)
        found = sorted(glob.glob(os.path.join(WHEELS, pattern)))
    return found[-1]


def django_wheel():
    """A Django wheel, downloaded once into the cache."""
    return wheel("[Dd]jango-4.2*.whl", "Django>=4.2,<4.3")


# -- the booted container -------------------------------------------------------

class Container:
    def __init__(self, tree, debs, wheel, nspawn_args=()):
        self.tree = tree
        self.console = open(tree + ".console", "w")
        self.nspawn = subprocess.Popen(
            ["systemd-nspawn", "--register=no", "--keep-unit", "--quiet",
             "-b", "-D", tree, "--console=read-only",
             # Its own name: other containers may be running beside it.
             "--machine=ppc-" + re.sub(r"[^a-z0-9]", "x", os.path.basename(
                 tree).rsplit(".", 1)[-1].lower()),
             f"--bind-ro={debs}:/srv/debs",
             f"--bind-ro={os.path.dirname(wheel)}:/srv/wheels",
             f"--bind-ro={TOP}:/srv/src",
             f"--bind={ARCHIVES}:/var/cache/apt/archives",
             *nspawn_args],
            env=dict(env(), **UNIFIED), stdin=subprocess.DEVNULL,
            stdout=self.console,
            stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._boot()
        except BaseException:
            os.killpg(self.nspawn.pid, signal.SIGKILL)
            self.nspawn.wait()
            self.console.close()
            raise

    def _boot(self):
        self.leader = self._leader()
        # Until the container's systemd answers on its bus (the leader is
        # found a moment before it does).
        end = time.monotonic() + 120
        while True:
            done = self.sh("systemctl is-system-running --wait", check=False,
                           timeout=120)
            state = done.stdout.strip()
            if state or time.monotonic() > end:
                break
            time.sleep(0.5)
        log(f"booted: {state}")
        assert state in ("running", "degraded"), (
            done.stderr + self.sh("systemctl --failed --no-pager",
                                  check=False).stdout)

    def _leader(self, timeout=30):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.nspawn.poll() is not None:
                raise AssertionError("systemd-nspawn ended: "
                                     + open(self.console.name).read()[-2000:])
            try:
                with open(f"/proc/{self.nspawn.pid}/task/{self.nspawn.pid}"
                          "/children") as f:
                    children = f.read().split()
            except OSError:
                children = []
            for pid in children:
                try:
                    with open(f"/proc/{pid}/comm") as f:
                        if f.read().strip() == "systemd":
                            return int(pid)
                except OSError:
                    pass
            time.sleep(0.1)
        raise AssertionError("the container's systemd did not start")

    def sh(self, script, check=True, timeout=300, input=None):
        """Run a shell script inside the container, as root."""
        done = subprocess.run(
            ["nsenter", "-t", str(self.leader), "-a", "--",
             "/usr/bin/env", "-i", f"PATH={DEBIAN_PATH}", "LC_ALL=C.UTF-8",
             "DEBIAN_FRONTEND=noninteractive", "HOME=/root", "TERM=dumb",
             "/bin/sh", "-ec", script],
            input=input, capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(f"in the container: {script}\n-> "
                                 f"{done.returncode}\n{done.stdout[-4000:]}\n"
                                 f"{done.stderr[-4000:]}")
        return done

    def out(self, script, **kw):
        return self.sh(script, **kw).stdout

    def stop(self):
        if self.nspawn.poll() is None:
            self.sh("systemctl poweroff --no-block", check=False, timeout=30)
            try:
                self.nspawn.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.nspawn.pid, signal.SIGKILL)
                self.nspawn.wait()
        self.console.close()


def boot(debs, wheel, nspawn_args=()):
    """A fresh copy of the cached tree, booted with these further options
    of systemd-nspawn; (container, its tree)."""
    os.makedirs(os.path.join(ARCHIVES, "partial"), exist_ok=True)
    tree = tempfile.mkdtemp(prefix="pyweb-popcon-system.", dir="/var/tmp")
    os.rmdir(tree)
    run("cp", "-a", base_tree(), tree)
    log(f"fresh copy in {tree}")
    try:
        return Container(tree, debs, wheel, nspawn_args), tree
    except BaseException:
        shutil.rmtree(tree, ignore_errors=True)
        raise


def discard(c, tree):
    c.stop()
    shutil.rmtree(tree, ignore_errors=True)
    try:
        os.unlink(tree + ".console")
    except OSError:
        pass


@pytest.fixture(scope="module")
def built(debs):
    return debs, django_wheel()


@pytest.fixture(scope="module")
def box(built):
    started = time.monotonic()
    c, tree = boot(*built)
    try:
        yield c
    finally:
        discard(c, tree)
        log(f"system test done in {time.monotonic() - started:.0f} s")


def conf_value(text, key):
    found = re.findall(rf'^{key}="([^"]*)"', text, re.M)
    return found[-1] if found else None


def reconfigure(box, answer, question="participate"):
    box.sh(f"echo 'pyweb-popcon pyweb-popcon/{question} boolean {answer}'"
           " | debconf-set-selections; dpkg-reconfigure -fnoninteractive "
           "pyweb-popcon")


def timer_state(box):
    enabled = box.out("systemctl is-enabled pyweb-popcon.timer",
                      check=False).strip()
    active = box.out("systemctl is-active pyweb-popcon.timer",
                     check=False).strip()
    return enabled, active


def spool_files(box):
    return box.out(f"find {SPOOL}/incoming {SPOOL}/quarantine -type f "
                   "! -name '.*' 2>/dev/null "
                   "| sort", check=False).split()


def places_with(box, address, where="/var /etc /run /tmp /root", units=()):
    """Files under `where` that hold `address` (not as part of a longer
    one), and whether the journal does (all of it, or of `units`;
    decompressed, every field: export form)."""
    box.sh("journalctl --sync")
    pattern = "(^|[^0-9.])" + address.replace(".", "\\.") + "([^0-9]|$)"
    files = box.out(f"grep -r -l -a -D skip -E '{pattern}' {where} "
                    "--exclude-dir=apt --exclude-dir=dpkg "
                    "2>/dev/null", check=False).split()
    only = "".join(f" -u {unit}" for unit in units)
    journal = box.sh(f"journalctl -o export --no-pager{only} | grep -a -q -E "
                     f"'{pattern}'", check=False).returncode == 0
    return files, journal
