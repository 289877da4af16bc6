"""Populations of hosts for the server's tests, stored as ingest would."""

import uuid

from pyweb_popcon import report

NOW = 1_800_000_000 * 10**9


def host(os_=("Debian", "12"), virt="none", age="25+", pythons=("3.11",),
         frameworks=()):
    """One kind of host: frameworks as (name, version, via, used) or
    (name, version, via, used, the Python it runs under)."""
    return {"os": os_, "virt": virt, "age": age, "pythons": tuple(pythons),
            "frameworks": tuple(frameworks)}


def hosts_of(population):
    """[(kind of host, how many)] -> one dict per host."""
    return [kind for kind, n in population for _ in range(n)]


def store_population(store, population):
    """Make `population`, [(kind of host, how many)], all the store holds."""
    store.expire(2**63 - 1)     # every host received before the end of time
    store.put([(NOW, f"r{uuid.uuid4().hex}", report.Report(
        host_id=str(uuid.uuid4()), date="2026-11-28", client="0.1.0",
        os=report.OS(*h["os"], "amd64"), virt=h["virt"], age=h["age"],
        pythons=h["pythons"],
        frameworks=tuple(report.Entry(*entry[:3], 1, *entry[3:])
                         for entry in h["frameworks"])))
        for h in hosts_of(population)])


def published_numbers(stats):
    """Every count a snapshot publishes, sorted."""
    found = []

    def walk(value, key=None):
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, k)
        elif isinstance(value, list):
            for v in value:
                walk(v, key)
        elif type(value) is int and key != "min_hosts":
            found.append(value)
    walk(stats)
    return sorted(found)
