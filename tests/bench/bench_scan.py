#!/usr/bin/python3
"""Benchmark: the scanner on a 10,000-environment machine, and on a hostile
tree.

The machine: 4,000 venvs under /srv, conda (a base and 1,000 envs), 500
Python prefixes and 500 pipx venvs under /opt, 1,000 pip --target
directories under /var/www, and 200 homes (SCAN_HOMES=yes) of 15 places
each (user site, pipx, poetry's cache, project venvs, a pyenv version,
hatch) among ordinary files; each place holds 12 distributions, one of
them a catalogue framework.  The alternative, measured in the same run, is
the obvious one: os.walk of every scan path and home, matching every
.dist-info met against the catalogue.  The hostile tree: 150,000
directories, a 1,000-deep chain, symbolic-link loops and FIFOs under /srv.
Each is scanned in a child process (time inside it, peak RSS from wait4),
warm, built under /dev/shm where it can be.  Targets: scan under 2 s and
100 MB; the hostile tree bounded (stopped at places.MAX_DIRECTORIES, under
5 s, under 100 MB).
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(os.path.dirname(TESTS), "src")
sys.path[:0] = [TESTS, SRC]

from fakemachine import FakeMachine  # noqa: E402

ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONDONTWRITEBYTECODE": "1",
       "PYTHONPATH": SRC}
FRAMEWORKS = [(name, version, "dist-info", module) for name, version, module
              in [("Django", "5.0.1", "django"), ("Flask", "3.0.3", "flask"),
                  ("fastapi", "0.110.0", "fastapi"),
                  ("streamlit", "1.35.0", "streamlit")]]
FILLER = 11
ENVIRONMENTS = 10_000

SCAN = """
import json, sys, time
from pyweb_popcon.client import scan, settings
from pyweb_popcon.client.paths import Root
root = Root(sys.argv[1])
config = settings.load(root)
start = time.perf_counter()
entries, _ = scan.scan(root, config)
print(json.dumps([time.perf_counter() - start,
                  sum(e.envs for e in entries if e.via != "deb")]))
"""

# The obvious way: walk everything, list every site-packages met.
OBVIOUS = """
import json, os, sys, time
from packaging.utils import canonicalize_name
from pyweb_popcon import catalogue
from pyweb_popcon.client import settings
from pyweb_popcon.client.paths import Root
root = Root(sys.argv[1])
config = settings.load(root)
start = time.perf_counter()
tops = [root.path(p) for p in config["SCAN_PATHS"]]
tops += [root.path("/root")] + [os.path.join(root.path("/home"), h)
                                for h in os.listdir(root.path("/home"))]
index = catalogue.by_distribution()
found = 0
for top in tops:
    for directory, dirs, files in os.walk(top):
        for d in dirs:
            if d.endswith(".dist-info") and canonicalize_name(
                    d.split("-")[0]) in index:
                found += 1
print(json.dumps([time.perf_counter() - start, found]))
"""


def place(m, kind, path, n):
    """One place of `kind` holding FILLER libraries and a framework."""
    dists = [(f"library-{i}", f"1.{i}") for i in range(FILLER)]
    dists.append(FRAMEWORKS[n % len(FRAMEWORKS)])
    if kind == "venv":
        m.venv(path, dists)
    elif kind == "conda":
        m.conda(path, dists)
    elif kind == "prefix":
        m.prefix(path, dists, "3.12")
    elif kind == "user":
        m.user_site(path, dists)
    else:
        for name, version, *module in dists:
            m.target(path, name, version, module[-1] if module else None)


def build(top):
    m = FakeMachine(top)
    n = 0

    def add(kind, path):
        nonlocal n
        place(m, kind, path, n)
        n += 1

    for i in range(4000):
        add("venv", f"/srv/group{i % 40}/site{i}/releases/current/venv"
            if i % 2 else f"/srv/site{i}/venv")
    add("conda", "/opt/conda")
    for i in range(1000):
        add("conda", f"/opt/conda/envs/env{i}")
    for i in range(500):
        add("prefix", f"/opt/python3.12-{i}")
        add("venv", f"/opt/pipx/venvs/tool{i}")
    for i in range(1000):
        add("target", f"/var/www/site{i}/vendor")
    for u in range(200):
        home = f"/home/user{u}"
        add("user", home)
        for i in range(5):
            add("venv", f"{home}/.local/share/pipx/venvs/tool{i}")
        for i in range(4):
            add("venv", f"{home}/.cache/pypoetry/virtualenvs/p{i}-AbC-py3.11")
        for i in range(3):
            add("venv", f"{home}/src/project{i}/.venv")
        add("prefix", f"{home}/.pyenv/versions/3.12.{u % 9}")
        add("venv", f"{home}/.local/share/hatch/env/virtual/web/AbCd/web")
        for i in range(30):
            m.file(f"{home}/Documents/folder{i}/notes.txt", "x")
    m.config('SCAN_HOMES="yes"\n')
    return m, n


def hostile(top):
    m = FakeMachine(top)
    wide = m.path("/srv/wide")
    for i in range(1000):
        for j in range(150):
            os.makedirs(f"{wide}/{i}/{j}")
    deep = m.path("/srv")
    for _ in range(1000):      # os.makedirs would recurse 1,000 deep
        deep += "/d"
        os.mkdir(deep)
    for i in range(100):
        os.symlink("..", m.path(f"/srv/d/loop{i}"))
        os.mkfifo(m.path(f"/srv/d/fifo{i}"))
    m.venv("/opt/app/venv", [("Flask", "3.0.3")])
    return m


def run(script, top):
    """(seconds inside the child, what it counted, peak RSS in MB)."""
    child = subprocess.Popen([sys.executable, "-c", script, top],
                             stdout=subprocess.PIPE, env=ENV)
    out = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.stdout.close()
    if status:
        raise SystemExit(f"the scan failed: {status}")
    seconds, counted = json.loads(out)
    return seconds, counted, usage.ru_maxrss / 1024


def median_run(script, top, times=3):
    runs = [run(script, top) for _ in range(times)]
    return (statistics.median(r[0] for r in runs), runs[0][1],
            max(r[2] for r in runs))


def main():
    # Built in memory where there is a tmpfs: the figures are the
    # scanner's, and 300,000 directories take minutes to make on a disk.
    shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    tmp = tempfile.mkdtemp(prefix="bench-scan-", dir=shm)
    try:
        print(f"building a machine of {ENVIRONMENTS} environments ...",
              flush=True)
        m, planted = build(os.path.join(tmp, "machine"))
        scan_s, counted, peak = median_run(SCAN, m.top)
        if counted != planted:
            raise SystemExit(f"the scan counted {counted} places, "
                             f"not the {planted} planted")
        walk_s, walk_counted, walk_peak = median_run(OBVIOUS, m.top)
        print("building a hostile tree of 150,000 directories ...",
              flush=True)
        h = hostile(os.path.join(tmp, "hostile"))
        hostile_s, hostile_counted, hostile_peak = run(SCAN, h.top)
    finally:
        # shutil.rmtree would recurse into the 1,000-deep chain.
        subprocess.run(["rm", "-rf", "--one-file-system", tmp], check=True)

    ratio = walk_s / scan_s
    results = [
        (f"scan, {planted} places (median of 3)", f"{scan_s:.3f} s",
         scan_s < 2, "< 2 s"),
        ("scan peak memory (RSS)", f"{peak:.1f} MB", peak < 100, "< 100 MB"),
        (f"os.walk of everything ({walk_counted} found)", f"{walk_s:.3f} s",
         True, ""),
        ("os.walk peak memory (RSS)", f"{walk_peak:.1f} MB", True, ""),
        ("speed-up over os.walk", f"{ratio:.1f}x", True, ""),
        ("hostile tree, 150,000 directories", f"{hostile_s:.3f} s",
         hostile_s < 5 and hostile_counted == 1, "< 5 s, its venv found"),
        ("hostile tree peak memory (RSS)", f"{hostile_peak:.1f} MB",
         hostile_peak < 100, "< 100 MB"),
    ]
    for name, value, ok, target in results:
        verdict = f"target {target}: {'met' if ok else 'MISSED'}" if target \
            else ""
        print(f"{name:42} {value:>10}   {verdict}")
    return 0 if all(ok for _, _, ok, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
