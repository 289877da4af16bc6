#!/usr/bin/python3
"""Benchmark: report.parse on hostile documents, against plain json.loads.

The documents of issue 9: one object of 8,500 keys (under 64 KiB), 60,000
'[' and a typical report.  Measured in the same run: plain json.loads (no
checks at all), and json.loads with the duplicate-key check parse had
before (list.count per key: quadratic).  Targets: the 8,500-key object
within 20x of plain json.loads and at least 20x faster than the quadratic
check; parse time linear in the size (from 2,125 to 8,500 keys it grows
as plain json.loads does, about 4x).  A typical report is shown for scale.
Run: make bench.
"""

import json
import os
import string
import sys
import timeit

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "src")
sys.path.insert(0, SRC)

from pyweb_popcon import report  # noqa: E402
from pyweb_popcon.report import OS, Entry, Report  # noqa: E402


def many_keys(n):
    """One JSON object of `n` short distinct keys."""
    alphabet = [c for c in string.printable[:94] if c not in '"\\']
    keys = (alphabet + [a + b for a in alphabet for b in alphabet])[:n]
    return ("{" + ",".join(json.dumps(k) + ":0" for k in keys) + "}").encode()


def quadratic(pairs):
    """The duplicate-key check parse had before: list.count per key."""
    keys = [k for k, _ in pairs]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        raise ValueError(dupes[0])
    return dict(pairs)


def seconds(func, number):
    """Best time of one call of `func`, in seconds."""
    return min(timeit.repeat(func, number=number, repeat=5)) / number


def refused(data):
    def call():
        try:
            report.parse(data)
        except report.ReportError:
            pass
    return call


def main():
    typical = report.serialise(Report(
        "2b0c1f5e-8d7a-4f4e-9b7e-3f0a9c1d2e4f", "2026-11-28", "0.1.0",
        OS("Debian", "12", "amd64"), "none", "25+", ("3.11",),
        tuple(Entry(n, "1.0", "deb", 1, True) for n in ("django", "flask",
                                                          "fastapi"))))
    big, quarter = many_keys(8500), many_keys(2125)
    assert len(big) <= report.MAX_BYTES
    ours = seconds(refused(big), 20)
    plain = seconds(lambda: json.loads(big), 20)
    before = seconds(lambda: json.loads(big, object_pairs_hook=quadratic), 1)
    ours_quarter = seconds(refused(quarter), 80)
    plain_quarter = seconds(lambda: json.loads(quarter), 80)
    print(f"8,500-key object ({len(big)} bytes): report.parse "
          f"{ours * 1e3:.1f} ms, plain json.loads {plain * 1e3:.1f} ms "
          f"({ours / plain:.1f}x), the quadratic check {before * 1e3:.0f} ms "
          f"({before / ours:.0f}x slower than report.parse)")
    print(f"linear: 2,125 keys {ours_quarter * 1e3:.2f} ms, 8,500 keys "
          f"{ours * 1e3:.2f} ms ({ours / ours_quarter:.1f}x for 4x the keys;"
          f" plain json.loads {plain / plain_quarter:.1f}x)")
    brackets = b"[" * 60_000
    print(f"60,000 '[': report.parse refuses it in "
          f"{seconds(refused(brackets), 20) * 1e3:.2f} ms (json.loads "
          f"raises RecursionError)")
    mine = seconds(lambda: report.parse(typical), 2000)
    theirs = seconds(lambda: json.loads(typical), 2000)
    print(f"typical report ({len(typical)} bytes): report.parse "
          f"{mine * 1e6:.0f} us, plain json.loads {theirs * 1e6:.0f} us "
          f"(checks included: {mine / theirs:.1f}x)")
    print("targets: 8,500 keys within 20x of plain json.loads and >= 20x "
          "faster than the quadratic check; 4x the keys about 4x the time")


if __name__ == "__main__":
    main()
