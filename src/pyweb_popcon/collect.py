"""Build this machine's report, encrypt it, put it in the outbox. No network."""

import datetime
import logging

from pyweb_popcon import (__version__, encrypt, facts, hostid, report, scan,
                          state)
from pyweb_popcon.report import Report

log = logging.getLogger(__name__)


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


def seal(root, config, data):
    """`data` encrypted to the configured server keys, or KeyProblem."""
    return encrypt.encrypt(data, root.path(config["KEYRING"]),
                           config["KEY_FINGERPRINTS"])


def collect(root, config, virt=None):
    """Put this machine's encrypted report in the outbox, for upload."""
    # The one command that may make the host ID: it writes state anyway.
    data = report.serialise(build(root, config, hostid.ensure(root), virt))
    state.put(root, data, seal(root, config, data))
    log.info("report collected into %s", root.path(state.OUTBOX))
