"""Aggregate and expire over 1,000,000 and 3,000,000 hosts in SQLite.

Hosts (about 3 frameworks each) are written straight into the schema;
`aggregate` and `expire` then run as the real command, each in its own
process, whose peak memory is read with getrusage.  Targets at 1,000,000:
aggregate under 30 s, expire under 10 s, peak memory under 500 MB.
Run: make bench.
"""

import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pyweb_popcon.server.store import Store, series  # noqa: E402
from server_fixtures import ENV, PYTHON  # noqa: E402

SIZES = [int(n) for n in os.environ.get("BENCH_HOSTS",
                                        "1000000 3000000").split()]
DAY_NS = 86_400 * 10**9
FRAMEWORKS = [("django", ("3.2.25", "4.2.11", "5.0.6", "5.1.1")),
              ("flask", ("2.2.5", "3.0.3")), ("fastapi", ("0.110.0",)),
              ("starlette", ("0.36.3",)), ("tornado", ("6.2", "6.4")),
              ("aiohttp", ("3.9.5",)), ("sanic", ("23.6.0",)),
              ("pyramid", ("2.0.2",)), ("bottle", ("0.12.25",))]
WEIGHTS = [40, 25, 15, 8, 5, 4, 1, 1, 1]


def fill(store, n, now):
    rng = random.Random(n)
    with store.transaction():
        for start in range(0, n, 50_000):
            hosts, fws, pys = [], [], []
            for _ in range(min(50_000, n - start)):
                host = str(uuid.UUID(int=rng.getrandbits(128), version=4))
                # Received over the last 25 days: a fifth are to expire.
                hosts.append((host, now - rng.randrange(25 * DAY_NS),
                              host, 0, "2026-11-28", 1, "0.1.0", "Debian",
                              rng.choice(["11", "12", "13"]), "amd64",
                              rng.choice(["none", "vm", "container"]),
                              rng.choice(["1", "2-4", "5-24", "25+"])))
                for name, versions in {rng.choices(FRAMEWORKS, WEIGHTS)[0]
                                       for _ in range(3)}:
                    version = rng.choice(versions)
                    fws.append((host, name, version, series(version),
                                rng.choice(["deb", "pip", "venv"]), 1,
                                rng.choice([0, 1, None])))
                pys.append((host, rng.choice(["3.9", "3.11", "3.12"])))
            store._many("INSERT INTO hosts VALUES "
                        "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", hosts)
            store._many("INSERT INTO host_frameworks VALUES "
                        "(?, ?, ?, ?, ?, ?, ?)", fws)
            store._many("INSERT INTO host_pythons VALUES (?, ?)", pys)


def timed(conf, *args):
    start = time.monotonic()
    subprocess.run([PYTHON, "-m", "pyweb_popcon.server", "--config", conf,
                    *args], env=ENV, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL,
                   stdin=subprocess.DEVNULL)
    return time.monotonic() - start


def peak_mb():
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main():
    for n in SIZES:
        top = tempfile.mkdtemp(prefix="bench-store-")
        try:
            conf = f"{top}/server.conf"
            with open(conf, "w") as f:
                f.write(f'STATE_DIR="{top}/state"\nSPOOL_DIR="{top}/spool"\n'
                        f'OUTPUT_DIR="{top}/www"\n')
            start = time.monotonic()
            with Store(f"sqlite://{top}/state/popcon.sqlite3") as store:
                fill(store, n, time.time_ns())
                rows = store.query("SELECT COUNT(*) FROM host_frameworks")
            print(f"{n:,} hosts, {rows[0][0]:,} framework rows written in "
                  f"{time.monotonic() - start:.0f} s", flush=True)
            aggregate = timed(conf, "aggregate")
            aggregate_mb = peak_mb()
            expire = timed(conf, "expire")
            print(f"  aggregate: {aggregate:.1f} s (target < 30 s at 1M), "
                  f"peak memory {aggregate_mb:.0f} MB")
            print(f"  expire:    {expire:.1f} s (target < 10 s at 1M), "
                  f"peak memory so far {peak_mb():.0f} MB (target < 500 MB)",
                  flush=True)
        finally:
            shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    main()
