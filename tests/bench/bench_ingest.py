"""Ingest of 10,000 encrypted submissions, against popcon's way.

popcon's way, measured on the same files in the same run: one serial
`gpg --decrypt-files` over all of them, then parsing each plaintext.  Its
plaintexts go to the same in-memory directory as ingest's, so the ratio
measures the method, not the file system.  Target: ingest at least 1.8x
as fast on 2 cores.  Run: make bench.
"""

import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pyweb_popcon import report  # noqa: E402
from pyweb_popcon.server.keyholder.gpg import in_memory  # noqa: E402
from server_fixtures import Server, encryptor, make_report  # noqa: E402

N = int(os.environ.get("BENCH_SUBMISSIONS", 10_000))
FRAMEWORKS = [("django", "4.2.11", "deb"), ("flask", "3.0.3", "venv"),
              ("fastapi", "0.110.0", "pip"), ("django", "5.0.6", "pip"),
              ("tornado", "6.2", "deb"), ("starlette", "0.36.3", "venv")]


def popcons_way(spool, gnupg_home, work):
    """Serial decrypt-files, then parse: what popcon's server does."""
    inputs = []
    for name in sorted(os.listdir(spool)):
        link = os.path.join(work, name + ".asc")
        os.symlink(os.path.join(spool, name), link)
        inputs.append(link)
    start = time.monotonic()
    subprocess.run(["gpg", "--homedir", gnupg_home, "--batch", "--yes",
                    "--quiet", "--decrypt-files", *inputs], check=True,
                   stdin=subprocess.DEVNULL)
    parsed = 0
    for link in inputs:
        with open(link[:-4], "rb") as f:
            report.parse(f.read())
            parsed += 1
    seconds = time.monotonic() - start
    subprocess.run(["gpgconf", "--homedir", gnupg_home, "--kill",
                    "gpg-agent"], check=False)
    return parsed, seconds


def main():
    top = tempfile.mkdtemp(prefix="bench-ingest-")
    try:
        srv = Server(top + "/srv")
        rng = random.Random(1)
        print(f"encrypting {N} reports ...", flush=True)
        plain = [make_report(str(uuid.uuid4()),
                             frameworks=rng.sample(FRAMEWORKS, 3))
                 for _ in range(N)]
        for data in encryptor().encrypt_many(plain):
            srv.drop(data)
        copy = top + "/copy"
        shutil.copytree(srv.incoming, copy)
        scratch = tempfile.mkdtemp(dir=in_memory())
        try:
            parsed, serial = popcons_way(copy, srv.gnupg_home, scratch)
        finally:
            shutil.rmtree(scratch)
        start = time.monotonic()
        out = srv.run("ingest").stdout.strip()
        ours = time.monotonic() - start
        assert out.startswith(f"{N} ingested"), out
        assert parsed == N
        print(f"popcon's way (serial gpg --decrypt-files + parse): "
              f"{serial:.1f} s, {N / serial:.0f} submissions/s")
        print(f"pyweb-popcon-server ingest ({len(os.sched_getaffinity(0))} "
              f"cores, into SQLite): {ours:.1f} s, {N / ours:.0f} "
              "submissions/s")
        print(f"ratio: {serial / ours:.2f}x (target >= 1.8x on 2 cores)")
    finally:
        shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    main()
