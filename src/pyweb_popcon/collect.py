"""Build this machine's report from what it has installed. No network."""

import datetime
import logging

from pyweb_popcon import __version__, facts, hostid, scan
from pyweb_popcon.report import Report

log = logging.getLogger(__name__)


def build(root, config, host, virt=None, today=None):
    """The Report for the machine under `root`, for HostID `host` (or None)."""
    entries, architecture = scan.scan(root, config)
    return Report(
        host_id=host.host_id if host else None,
        date=(today or datetime.datetime.now(datetime.timezone.utc).date())
        .isoformat(),
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
