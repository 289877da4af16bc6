"""pyweb-popcon: the command an administrator runs."""

import argparse
import datetime
import logging
import os
import sys

from pyweb_popcon import __version__, collect, config, hostid, log, report
from pyweb_popcon.root import Root

EX_CONFIG = 78          # sysexits.h: configuration error

logger = logging.getLogger(__name__)


def cmd_show(args, root, conf):
    """Print the exact report that would be sent; write and send nothing."""
    rep, why = collect.preview(root, conf, args.virt)
    if why:
        print(f"host_id is null: {why}", file=sys.stderr)
    sys.stdout.buffer.write(report.serialise(rep))
    return 0


def cmd_status(args, root, conf):
    """Say whether this machine participates, and why."""
    participating, why = config.participation(conf)
    print(f"Participating: {'yes' if participating else 'no'} ({why})")
    print("Configuration read: "
          + (", ".join(conf.files) or "none (built-in defaults)"))
    try:
        host = hostid.read(root)
        made = datetime.datetime.fromtimestamp(host.created,
                                               datetime.timezone.utc)
        print(f"Host ID: {host.host_id} (made {made:%Y-%m-%d}, "
              f"age bucket {host.age()})")
    except hostid.HostIDError as e:
        print(f"Host ID: none ({e})")
    return 0


COMMANDS = {"show": cmd_show, "status": cmd_status}


def _common(top_level):
    """Options every command takes, before or after its name."""
    default = (lambda value: value) if top_level else (
        lambda value: argparse.SUPPRESS)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--root", metavar="DIR", default=default("/"),
                        help="look at the machine whose files are under DIR, "
                             "as dpkg --root does (default /)")
    common.add_argument("--virt", choices=report.VIRTS, default=default(None),
                        help="the virtualisation to report (default: "
                             "systemd-detect-virt, or none with --root)")
    common.add_argument("-v", "--verbose", action="store_true",
                        default=default(False),
                        help="say what is skipped and why")
    return common


def parser():
    p = argparse.ArgumentParser(
        prog="pyweb-popcon", parents=[_common(True)],
        description="An opt-in popularity contest for Python web "
                    "frameworks. With PARTICIPATE=\"yes\" in "
                    "/etc/pyweb-popcon.conf it sends a weekly encrypted "
                    "report of which catalogue frameworks and versions are "
                    "installed, and nothing else.")
    p.add_argument("--version", action="version",
                   version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, func in COMMANDS.items():
        sub.add_parser(name, parents=[_common(False)],
                       help=func.__doc__.strip(),
                       description=func.__doc__.strip())
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    log.setup(args.verbose)
    root = Root(args.root)
    try:
        conf = config.load(root)
    except config.ConfigError as e:
        print(f"pyweb-popcon: configuration error: {e}", file=sys.stderr)
        return EX_CONFIG
    return COMMANDS[args.command](args, root, conf)
