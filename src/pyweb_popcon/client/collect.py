"""Build this machine's report from what scan and facts find. No network.

Encrypting and queueing the report is the caller's (the CLI's) step, so
that nothing this module reaches can talk to the network.
"""

import datetime

from pyweb_popcon import __version__, report
from pyweb_popcon.client import facts, hostid, scan
from pyweb_popcon.report import Report


def build(root, config, host, virt=None):
    """The Report for the machine under `root`, for HostID `host` (or None)."""
    entries, architecture = scan.scan(root, config)
    return Report(
        host_id=host.host_id if host else None,
        date=datetime.datetime.now(datetime.timezone.utc).date().isoformat(),
        client=__version__,
        os=facts.operating_system(root, architecture),
        virt=facts.virtualisation(root, virt),
        age=host.age() if host else "1",
        pythons=facts.pythons(root),
        frameworks=entries,
    )


def preview(root, config, virt=None):
    """(Report, why the host ID is missing or None), writing nothing."""
    try:
        host, why = hostid.read(root), None
    except hostid.HostIDError as e:
        host, why = None, str(e)
    return build(root, config, host, virt), why


def document(root, config, virt=None):
    """The serialised report to send, making the host ID if need be."""
    # The one step that may make the host ID: it writes state anyway.
    return report.serialise(build(root, config, hostid.ensure(root), virt))
