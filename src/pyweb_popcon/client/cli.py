"""pyweb-popcon: the command an administrator runs."""

import argparse
import datetime
import logging
import os
import subprocess
import sys
import uuid

from pyweb_popcon import __version__, report
from pyweb_popcon.client import (collect, delivery, encrypt, hostid,
                                 settings, state)
from pyweb_popcon.client.paths import Root
from pyweb_popcon.common import journal
from pyweb_popcon.common.conffile import ConfigError


logger = logging.getLogger(__name__)
# The journal's MESSAGE_ID for "participating, but no server configured".
NO_SERVER = uuid.UUID("4091d3e8d04643588fa0cd7c579bcf7c")


def cmd_show(args, root, conf):
    """Print the exact report that would be sent; write and send nothing."""
    rep, why = collect.preview(root, conf, args.virt)
    if why:
        print(f"host_id is null: {why}", file=sys.stderr)
    sys.stdout.buffer.write(report.serialise(rep))
    return 0


def cmd_status(args, root, conf):
    """Say whether this machine participates, and why."""
    participating, why = settings.participation(conf)
    print(f"Participating: {'yes' if participating else 'no'} ({why})")
    missing = settings.server_missing(conf)
    print("Server: " + (f"not configured ({missing})" if missing else
                        f"{settings.destination(conf)}, keys "
                        f"{' '.join(conf['KEY_FINGERPRINTS'])} "
                        f"({conf.origins['KEY_FINGERPRINTS']})"))
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
    try:
        st = state.load(root)
    except PermissionError:
        print("Last attempt: unknown (the state is readable by root only)")
        return 0
    print(f"Last attempt: {_when(st.last_attempt)}"
          + (f" ({st.result})" if st.result else ""))
    print(f"Last success: {_when(st.last_success)}"
          + (f" (receipt {st.receipt})" if st.last_success else ""))
    box = state.pending(root)
    if box:
        made = datetime.datetime.fromtimestamp(
            os.stat(box.ciphertext).st_mtime, datetime.timezone.utc)
        print(f"Outbox: a report collected {state.shown(made)}")
    else:
        print("Outbox: empty")
    later = st.next_allowed()
    if later:
        print(f"Next report: not before {state.shown(later)}")
    timer = _timer(root)
    if timer:
        print(f"Timer: {timer}")
    return 0


def _timer(root):
    """The weekly timer's state and next run as systemd sees them, or None
    (another root, or no systemd running)."""
    if not root.is_system or not os.path.isdir("/run/systemd/system"):
        return None
    try:
        done = subprocess.run(
            ["systemctl", "show", "-p", "UnitFileState",
             "-p", "NextElapseUSecRealtime", "pyweb-popcon.timer"],
            stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    shown = dict(line.partition("=")[::2] for line in done.stdout.splitlines())
    state = shown.get("UnitFileState") or "not installed"
    next_run = shown.get("NextElapseUSecRealtime")
    return (f"pyweb-popcon.timer {state}"
            + (f", next run {next_run}" if next_run else ""))


def _when(stamp):
    if stamp is None:
        return "never"
    return state.shown(datetime.datetime.fromisoformat(stamp))


def _sitting_out(conf):
    """True, saying so, when this machine does not participate."""
    participating, why = settings.participation(conf)
    if not participating:
        logger.info("not participating: %s; nothing is collected or sent",
                    why)
    return not participating


def _no_server(conf):
    """True, saying so, when there is no server to send reports to."""
    missing = settings.server_missing(conf)
    if missing:
        logger.warning("participating, but no server is configured: %s; "
                       "nothing is collected or sent until then", missing,
                       extra=journal.fields(NO_SERVER))
    return missing is not None


def _held_back(conf):
    """None when this machine may send; else the exit status, said why."""
    if _sitting_out(conf):
        return 0
    if _no_server(conf):
        return settings.NOT_CONFIGURED
    return None


def queue_report(root, conf, virt=None):
    """This machine's report, encrypted, into the outbox for upload."""
    data = collect.document(root, conf, virt)
    state.put(root, data, encrypt.seal(root, conf, data).ciphertext)
    logger.info("report collected into %s", root.path(state.OUTBOX))


def cmd_collect(args, root, conf):
    """Build the report and put it, encrypted, in the outbox (no network)."""
    held = _held_back(conf)
    if held is not None:
        return held
    with state.locked(root):
        queue_report(root, conf, args.virt)
    return 0


def transport(conf):
    """The module that sends the configured way (TRANSPORT; see delivery).

    Imported only by the commands that send, once they know they will:
    importing requests makes urllib3 open a socket (to see whether IPv6
    works), and a machine that does not participate opens none."""
    if conf["TRANSPORT"] == "dns":
        from pyweb_popcon.client import dns
        return dns
    from pyweb_popcon.client import https
    return https


def cmd_upload(args, root, conf):
    """Send the encrypted report waiting in the outbox."""
    held = _held_back(conf)
    if held is not None:
        return held
    with state.locked(root):
        return delivery.send_pending(root, conf, transport(conf),
                                     force=args.force)


def cmd_submit(args, root, conf):
    """Collect and send the report now, for a person at a terminal."""
    held = _held_back(conf)
    if held is not None:
        return held
    if args.dry_run:
        return _dry_run(args, root, conf)
    with state.locked(root):
        if not args.force and delivery.too_soon(root):
            return 0
        queue_report(root, conf, args.virt)
        return delivery.send_pending(root, conf, transport(conf), force=True)


def _dry_run(args, root, conf):
    """Show what submit would send, and where; write and send nothing."""
    rep, why = collect.preview(root, conf, args.virt)
    data = report.serialise(rep)
    sealed = encrypt.seal(root, conf, data)   # the key checks of a real run
    print(f"Would send {len(sealed.ciphertext)} bytes of ciphertext, "
          f"encrypted to {' '.join(sealed.recipients)}, "
          f"{transport(conf).plan(conf, sealed.ciphertext)}.")
    if why:
        print(f"host_id is null here: {why}")
    later = state.load(root).next_allowed()
    if later:
        print(f"A real run would wait until {state.shown(later)} "
              "(the last report is under 6 days old) unless --force.")
    print("The report, before encryption:")
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    return 0


def cmd_history(args, root, conf):
    """List the reports sent, newest first, or print report NUMBER."""
    sent = state.load(root).history
    if args.number is None:
        if not sent:
            print("No report has been sent yet.")
        for number, entry in enumerate(sent, 1):
            print(f"{number:2}  {_when(entry['sent'])}  "
                  f"receipt {entry['receipt']}")
        return 0
    if not 1 <= args.number <= len(sent):
        print(f"pyweb-popcon: history has {len(sent)} report(s); "
              f"there is no number {args.number}", file=sys.stderr)
        return os.EX_USAGE
    sys.stdout.buffer.write(state.history_copy(root, sent[args.number - 1]))
    return 0


def cmd_forget(args, root, conf):
    """Ask the server to delete this machine's data; then a new host ID."""
    # Works after opting out (that is when it is wanted), but
    # DO_NOT_TRACK=1 means nothing at all is sent.
    if settings.do_not_track():
        print("pyweb-popcon: DO_NOT_TRACK is set, so nothing is sent; run "
              "forget without it in the environment", file=sys.stderr)
        return os.EX_CONFIG
    try:
        host = hostid.read(root)
    except hostid.HostIDError as e:
        if not e.renewable:
            raise PermissionError(e) from None
        print(f"Nothing to forget: {e}")
        return 0
    body = encrypt.seal(root, conf, report.serialise(
        report.Forget(host.host_id))).ciphertext
    with state.locked(root):
        # A report still waiting would bring this host back afterwards.
        state.discard(root)
        return delivery.send_forget(root, conf, transport(conf), body)


COMMANDS = {"show": cmd_show, "status": cmd_status, "collect": cmd_collect,
            "upload": cmd_upload, "submit": cmd_submit,
            "history": cmd_history, "forget": cmd_forget}

_FORCE = (("--force",), {"action": "store_true",
                         "help": "send even if the last report went less "
                                 "than 6 days ago"})
OPTIONS = {
    "upload": (_FORCE,),
    "submit": (_FORCE, (("--dry-run",), {
        "action": "store_true",
        "help": "show what would be sent and where; send nothing"})),
    "history": ((("number",), {
        "nargs": "?", "type": int, "metavar": "NUMBER",
        "help": "print this report (1 is the newest)"}),),
}


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
        command = sub.add_parser(name, parents=[_common(False)],
                                 help=func.__doc__.strip(),
                                 description=func.__doc__.strip())
        for flags, options in OPTIONS.get(name, ()):
            command.add_argument(*flags, **options)
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    with journal.setup(settings.IDENTIFIER, args.verbose):
        return _run(args)


def _run(args):
    """The command `args` names, run: its exit status."""
    root = Root(args.root)
    try:
        conf = settings.load(root)
    except ConfigError as e:
        print(f"pyweb-popcon: configuration error: {e}", file=sys.stderr)
        return os.EX_CONFIG
    try:
        return COMMANDS[args.command](args, root, conf)
    except encrypt.KeyProblem as e:
        print(f"pyweb-popcon: server key problem: {e}", file=sys.stderr)
        return os.EX_CONFIG
    except PermissionError as e:
        print(f"pyweb-popcon: {e}: run this as root", file=sys.stderr)
        return os.EX_NOPERM
    except OSError as e:
        print(f"pyweb-popcon: {e.filename}: {e.strerror}", file=sys.stderr)
        return os.EX_IOERR
