#!/usr/bin/python3
"""Benchmark: `pyweb-popcon show` against what a person would run instead.

A synthetic machine with 200 venvs of 150 distributions each and a dpkg
status of 3,000 packages.  The alternative, measured in the same run, is
`python3 -m pip list --format=json --path SITE` for every environment plus
`dpkg-query -W`.  Targets: show under 1 s, at least 20x faster than the
pip way, peak memory under 60 MB.
"""

import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(os.path.dirname(TESTS), "src")
sys.path[:0] = [TESTS, SRC]

from fakemachine import FakeMachine, status_paragraph  # noqa: E402

VENVS, DISTS, PACKAGES = 200, 150, 3000
FRAMEWORKS = [("Django", "5.0.1", "django"), ("Flask", "3.0.3", "flask"),
              ("fastapi", "0.110.0", "fastapi"), ("starlette", "0.37.2",
                                                  "starlette")]
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONDONTWRITEBYTECODE": "1",
       "PYTHONPATH": SRC}


def build(top):
    rnd = random.Random(1)
    m = FakeMachine(top)
    m.packages += [status_paragraph(f"lib-package-{i}", f"1.{i}-1")
                   for i in range(PACKAGES - 4)]
    m.packages += [status_paragraph(p, v) for p, v in [
        ("python3-django", "3:3.2.25-0+deb12u7"), ("python3-flask", "2.2.2-3"),
        ("python3-tornado", "6.2.0-3"), ("python3-twisted", "22.4.0-4")]]
    m.write_status()
    sites = []
    for v in range(VENVS):
        dists = [(f"library_{rnd.randrange(5000)}_{d}", f"{d % 9}.{d}.0")
                 for d in range(DISTS - 2)]
        dists += rnd.sample(FRAMEWORKS, 2)
        sites.append(m.path(m.venv(f"/srv/app{v // 20}/site{v}/venv",
                                   dists)))
    return m, sites


def run(command):
    """(seconds, peak RSS in MB) of one child process."""
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env=ENV)
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - start
    if status:
        raise SystemExit(f"{command[:4]} failed: {status}")
    return elapsed, usage.ru_maxrss / 1024


def main():
    with tempfile.TemporaryDirectory(prefix="bench-show-") as top:
        print(f"building {VENVS} venvs x {DISTS} distributions and "
              f"{PACKAGES} dpkg packages ...", flush=True)
        m, sites = build(os.path.join(top, "root"))
        show = [sys.executable, "-m", "pyweb_popcon.client", "show", "--root", m.top]
        found = json.loads(subprocess.run(show, env=ENV, capture_output=True,
                                          check=True).stdout)["frameworks"]
        venv_envs = sum(f["envs"] for f in found if f["via"] == "venv")
        if venv_envs != 2 * VENVS:
            raise SystemExit(f"show counted {venv_envs} framework "
                             f"environments, not {2 * VENVS}")
        runs = [run(show) for _ in range(5)]
        show_s = statistics.median(t for t, _ in runs)
        peak = max(mb for _, mb in runs)

        print("the pip way: pip list per environment + dpkg-query ...",
              flush=True)
        pip_s = run(["dpkg-query", f"--admindir={m.path('/var/lib/dpkg')}",
                     "-W"])[0]
        for i, site in enumerate(sites):
            pip_s += run([sys.executable, "-m", "pip", "list",
                          "--format=json", "--path", site])[0]
            if sys.stderr.isatty():
                print(f"\r  {i + 1}/{len(sites)}", end="", file=sys.stderr)
        if sys.stderr.isatty():
            print(file=sys.stderr)

    ratio = pip_s / show_s
    results = [
        ("show (median of 5)", f"{show_s:.3f} s", show_s < 1.0, "< 1 s"),
        ("pip list x 200 + dpkg-query", f"{pip_s:.1f} s", True, ""),
        ("speed-up", f"{ratio:.0f}x", ratio >= 20, ">= 20x"),
        ("show peak memory", f"{peak:.1f} MB", peak < 60, "< 60 MB"),
    ]
    for name, value, ok, target in results:
        verdict = f"target {target}: {'met' if ok else 'MISSED'}" if target \
            else ""
        print(f"{name:30} {value:>10}   {verdict}")
    return 0 if all(ok for _, _, ok, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
