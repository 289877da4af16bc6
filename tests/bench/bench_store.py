"""Aggregate and expire over 1,000,000 and 3,000,000 hosts in SQLite.

Hosts (about 3 frameworks each, each under a Python for the 70% that send
report format 2) are written straight into the schema; `aggregate` (the
tables by Python included) and `expire` then run as the real command,
each in its own process, whose peak memory is read with getrusage.
Targets at 1,000,000: aggregate under 5 s, expire under 10 s, peak memory
under 500 MB.  Aggregate runs again on one core (taskset), where it
counts on one connection, not one per core: the ratio says what counting
partitions at once gains.

Expiry against popcon's way, in the same run: one file per host (popcon
keeps one per submitting machine) in 256 directories, with the same
receive times as mtimes, then `find -mtime +19 | xargs rm`, which deletes
the same hosts (20 days old or older).  Both figures are per deleted host;
the target is expire at least 10x as fast, and linear in the hosts
deleted (the same time per host at both sizes).  The store drops whole
days and deletes one by one only in the day the cutoff falls in, so the
bench says how many hosts that was, and also times the worst case: a day
deleted one by one, as a run just before midnight UTC would.

The same store on PostgreSQL, beside SQLite, at 1,000,000 hosts
(BENCH_PG_HOSTS): aggregate, expire, and ingest from two processes at
once (each putting 2,500 new hosts' reports in batches, as ingest does,
on the same database), with the ratios.  PostgreSQL is a throw-away
cluster as the tests start it; its tables are vacuumed and analyzed
after the load, as autovacuum would have done on a server.  Run: make
bench.
"""

import collections
import multiprocessing
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

from pyweb_popcon import report  # noqa: E402
from pyweb_popcon.server.store import (  # noqa: E402
    COLUMNS, DAY_NS, Store, _suffix, series)
from server_fixtures import (  # noqa: E402
    ENV, PYTHON, new_postgres_database)

SIZES = [int(n) for n in os.environ.get("BENCH_HOSTS",
                                        "1000000 3000000").split()]
PG_HOSTS = int(os.environ.get("BENCH_PG_HOSTS", 1_000_000))
PUTS = 2_500            # reports each of the two ingesting processes puts
BATCH = 500             # as ingest's
FRAMEWORKS = [("django", ("3.2.25", "4.2.11", "5.0.6", "5.1.1")),
              ("flask", ("2.2.5", "3.0.3")), ("fastapi", ("0.110.0",)),
              ("starlette", ("0.36.3",)), ("tornado", ("6.2", "6.4")),
              ("aiohttp", ("3.9.5",)), ("sanic", ("23.6.0",)),
              ("pyramid", ("2.0.2",)), ("bottle", ("0.12.25",))]
WEIGHTS = [40, 25, 15, 8, 5, 4, 1, 1, 1]
PYTHONS = ("3.9", "3.10", "3.11", "3.12", "3.13")


def ages(n):
    """The age of each host's last report, in ns: over the last 25 days,
    so a fifth are to expire."""
    rng = random.Random(n)
    return [rng.randrange(25 * DAY_NS) for _ in range(n)]


def fill(store, n, now, aged):
    """Each host in the partition of the day its report was received on,
    as ingest leaves them."""
    rng = random.Random(n + 1)
    with store.transaction():
        for start in range(0, n, 50_000):
            parts = collections.defaultdict(lambda: ([], [], []))
            for age in aged[start:start + 50_000]:
                host = str(uuid.UUID(int=rng.getrandbits(128), version=4))
                received = now - age
                hosts, fws, pys = parts[received // DAY_NS]
                format = 2 if rng.random() < 0.7 else 1
                hosts.append((host, received, host, 0, "2026-11-28", format,
                              "0.1.0", "Debian",
                              rng.choice(["11", "12", "13"]), "amd64",
                              rng.choice(["none", "vm", "container"]),
                              rng.choice(["1", "2-4", "5-24", "25+"])))
                for name, versions in {rng.choices(FRAMEWORKS, WEIGHTS)[0]
                                       for _ in range(3)}:
                    version = rng.choice(versions)
                    fws.append((host, name, version, series(version),
                                rng.choice(["deb", "pip", "venv"]), 1,
                                rng.choice([0, 1, None]),
                                rng.choice(PYTHONS) if format == 2 else ""))
                pys.append((host, rng.choice(["3.9", "3.11", "3.12"])))
            known = set(store._days())
            for day, rows in parts.items():
                if day not in known:
                    store._add_partition(day)
                for table, part in zip(COLUMNS, rows):
                    load(store, f"{table}_{_suffix(day)}", part)
    if not store.sqlite:
        store.query("VACUUM ANALYZE")


def load(store, table, rows):
    """Rows into a table: on PostgreSQL by COPY, its fast way."""
    if store.sqlite:
        store._many(f"INSERT INTO {table} VALUES "
                    f"({store.dialect.marks(len(rows[0]))})", rows)
        return
    with store.conn.cursor().copy(f"COPY {table} FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def reports(seed, now):
    """PUTS new hosts' reports, received over the last three days."""
    rng = random.Random(seed)
    return [(now - rng.randrange(3 * DAY_NS), f"r{seed}-{i}", report.Report(
        host_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        date="2026-11-28", client="0.1.0",
        os=report.OS("Debian", rng.choice(["11", "12", "13"]), "amd64"),
        virt="vm", age="25+", pythons=(rng.choice(["3.11", "3.12"]),),
        frameworks=tuple(report.Entry(name, rng.choice(versions), "deb", 1,
                                      True, rng.choice(PYTHONS))
                         for name, versions in {rng.choices(
                             FRAMEWORKS, WEIGHTS)[0] for _ in range(3)})))
        for i in range(PUTS)]


def put_all(url, messages):
    with Store(url) as store:
        for i in range(0, len(messages), BATCH):
            store.put(messages[i:i + BATCH])


def two_ingests(url, now):
    """Seconds for two processes to put PUTS reports each, at once."""
    fork = multiprocessing.get_context("fork")
    workers = [fork.Process(target=put_all, args=(url, reports(seed, now)))
               for seed in (1, 2)]
    start = time.monotonic()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
        assert worker.exitcode == 0, worker.exitcode
    return time.monotonic() - start


def config(top, url):
    """The path of a new server.conf in `top`, for the database at `url`."""
    conf = f"{top}/server-{url.split(':')[0]}.conf"
    with open(conf, "w") as f:
        f.write(f'STATE_DIR="{top}/state"\nSPOOL_DIR="{top}/spool"\n'
                f'OUTPUT_DIR="{top}/www"\nDATABASE_URL="{url}"\n')
    return conf


def engine_figures(top, url, n):
    """{figure: seconds} of the store at `url` holding n hosts."""
    conf = config(top, url)
    now = time.time_ns()
    start = time.monotonic()
    with Store(url) as store:
        fill(store, n, now, ages(n))
        engine = store.engine.split()[0]
    print(f"  {engine}: {n:,} hosts written in "
          f"{time.monotonic() - start:.0f} s", flush=True)
    figures = {"aggregate": timed(conf, "aggregate")[0]}
    figures["ingest"] = two_ingests(url, now)
    figures["expire"] = timed(conf, "expire")[0]
    print(f"  {engine}: aggregate {figures['aggregate']:.1f} s, two "
          f"ingests of {PUTS:,} reports each at once "
          f"{figures['ingest']:.1f} s ({2 * PUTS / figures['ingest']:.0f} "
          f"reports/s), expire {figures['expire']:.1f} s (load average "
          f"{os.getloadavg()[0]:.1f})", flush=True)
    return figures


def engines(n):
    """SQLite and PostgreSQL side by side, with n hosts."""
    print(f"{n:,} hosts on SQLite and PostgreSQL", flush=True)
    top = tempfile.mkdtemp(prefix="bench-engines-")
    try:
        lite = engine_figures(top, f"sqlite://{top}/state/popcon.sqlite3", n)
        pg = engine_figures(top, new_postgres_database(), n)
    finally:
        shutil.rmtree(top, ignore_errors=True)
    for figure in ("aggregate", "ingest", "expire"):
        print(f"  {figure}: PostgreSQL takes {pg[figure] / lite[figure]:.2f}x"
              " SQLite's time")
    print(f"  peak memory of a command or ingest {peak_mb():.0f} MB "
          "(target < 500 MB; PostgreSQL's own not counted)", flush=True)


def timed(conf, *args, one_core=False):
    """(seconds, output) of one server command, on one core if `one_core`
    (where it counts with one connection, not one per core)."""
    start = time.monotonic()
    done = subprocess.run((["taskset", "-c", "0"] if one_core else [])
                          + [PYTHON, "-m", "pyweb_popcon.server", "--config",
                             conf, *args], env=ENV, check=True, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          stdin=subprocess.DEVNULL)
    return time.monotonic() - start, done.stdout


def one_day_one_by_one(top, cutoff):
    """(seconds, hosts) of expiring the rest of the cutoff's day, which is
    deleted row by row: the store opened, expired and closed, as the
    command does."""
    start = time.monotonic()
    with Store(f"sqlite://{top}/state/popcon.sqlite3") as store:
        gone = store.expire((cutoff // DAY_NS + 1) * DAY_NS - 1)
    return time.monotonic() - start, gone


def popcon_way(top, aged, now):
    """Seconds for find | xargs rm over one file per host; files deleted."""
    entries = os.path.join(top, "popcon-entries")
    rng = random.Random(len(aged))
    for i in range(256):
        os.makedirs(os.path.join(entries, f"{i:02x}"))
    body = b"x" * 600       # a popcon submission is a few hundred bytes+
    for age in aged:
        name = uuid.UUID(int=rng.getrandbits(128), version=4).hex
        path = os.path.join(entries, name[:2], name)
        with open(path, "wb") as f:
            f.write(body)
        when = now - age
        os.utime(path, ns=(when, when))
    subprocess.run(["sync"], check=True)
    start = time.monotonic()
    subprocess.run(f"find {entries} -type f -mtime +19 -print0 | "
                   "xargs -0 -r rm -f", shell=True, check=True)
    took = time.monotonic() - start
    left = sum(len(os.listdir(os.path.join(entries, d)))
               for d in os.listdir(entries))
    shutil.rmtree(entries)
    return took, len(aged) - left


def peak_mb():
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main():
    for n in SIZES:
        top = tempfile.mkdtemp(prefix="bench-store-")
        try:
            url = f"sqlite://{top}/state/popcon.sqlite3"
            conf = config(top, url)
            start = time.monotonic()
            now = time.time_ns()
            aged = ages(n)
            with Store(url) as store:
                fill(store, n, now, aged)
                rows = store.query("SELECT COUNT(*) FROM host_frameworks")
                store.query("PRAGMA wal_checkpoint(TRUNCATE)")
            print(f"{n:,} hosts, {rows[0][0]:,} framework rows written in "
                  f"{time.monotonic() - start:.0f} s "
                  f"(load average {os.getloadavg()[0]:.1f})", flush=True)
            counting, _ = timed(conf, "aggregate", "--no-publish")
            aggregate, _ = timed(conf, "aggregate")
            aggregate_mb = peak_mb()
            one_core, _ = timed(conf, "aggregate", one_core=True)
            cutoff = time.time_ns() - 20 * DAY_NS
            expire, said = timed(conf, "expire")
            old = int(said.split()[0])
            one_by_one = sum(1 for age in aged if (now - age) // DAY_NS
                             == cutoff // DAY_NS and now - age < cutoff)
            print(f"  aggregate: {aggregate:.1f} s (target < 5 s at 1M), "
                  f"of which counting (aggregate --no-publish) "
                  f"{counting:.1f} s, peak memory {aggregate_mb:.0f} MB; "
                  f"on one core, counting with one connection, "
                  f"{one_core:.1f} s ({one_core / aggregate:.2f}x the time) "
                  f"(load average {os.getloadavg()[0]:.1f})")
            print(f"  expire:    {expire:.1f} s for {old:,} hosts, "
                  f"{expire / old * 1e6:.1f} us per deleted host (target < "
                  f"10 s at 1M), peak memory so far {peak_mb():.0f} MB "
                  f"(target < 500 MB); about {one_by_one:,} of them in the "
                  "cutoff's day, deleted one by one", flush=True)
            worst, gone = one_day_one_by_one(top, cutoff)
            os.unlink(f"{top}/state/popcon.sqlite3")
            popcon, deleted = popcon_way(top, aged, now)
            per_file = popcon / deleted
            print(f"  popcon's find | xargs rm: {popcon:.1f} s for "
                  f"{deleted:,} files, {per_file * 1e6:.1f} us per "
                  "deleted host; expire is "
                  f"{per_file * old / expire:.1f}x as fast per host "
                  "(target >= 10x) "
                  f"(load average {os.getloadavg()[0]:.1f})", flush=True)
            print(f"  expire's worst case, a day of {gone:,} hosts deleted "
                  f"one by one (a run just before midnight UTC): "
                  f"{worst / gone * 1e6:.1f} us per host, "
                  f"{per_file * gone / worst:.1f}x as fast as popcon's",
                  flush=True)
        finally:
            shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    main()
    engines(PG_HOSTS)
