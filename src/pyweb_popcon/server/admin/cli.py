"""pyweb-popcon-server: the command a maintainer of the server runs.

Each command imports what it runs when it runs: `serve`, facing the
internet, never loads GnuPG, the store or the charts.
"""

import argparse
import datetime
import logging
import json
import os
import pwd
import sys
import time

from pyweb_popcon import __version__
from pyweb_popcon.common import journal
from pyweb_popcon.common.conffile import ConfigError, positive_int, quote
from pyweb_popcon.server import ServerError, published, settings
from pyweb_popcon.server.admin import runs
from pyweb_popcon.server.spool import Spool


logger = logging.getLogger(__name__)
DAY = 86_400


def non_negative_int(text):
    if not text.isdigit():
        raise argparse.ArgumentTypeError("expected a whole number of days")
    return int(text)


def day(text):
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a date, YYYY-MM-DD") \
            from None


def _no_ingest(conf):
    """Hold the spool's ingest lock, if ingest ever ran: what stops the
    key's agent must not do so under a running ingest."""
    return Spool(conf["SPOOL_DIR"]).ingest_lock(create=False)


def _store(conf):
    from pyweb_popcon.server.store import Store
    return Store(conf["DATABASE_URL"], conf.values.get(PASSWORD))


def cmd_config(args, conf):
    """Print the effective configuration, defaults included."""
    for key, about in settings.KEYS.items():
        print(f"{key}={quote(settings.shown(key, conf[key]))}  "
              f"# {about.doc}")
    return 0


def cmd_keygen(args, conf):
    """Make the server key pair if there is none, or a new one with
    --rotate; print the fingerprints clients encrypt to."""
    from pyweb_popcon.common import files
    # gpg as root would follow any link the ingest user put in its home:
    # the key is made by that user, and only the export, to the file root
    # names, is written by root.
    valid, exported = _as_ingest_user(_keys, args, conf)
    if args.export:
        files.write_atomic(os.path.abspath(args.export), exported.encode())
    print(" ".join(valid))
    return 0


def _keys(args, conf):
    """keygen's work on the key: (fingerprints clients encrypt to, their
    armored public keys when --export asks for them, as text)."""
    from pyweb_popcon.server.admin import keys
    home = settings.gnupg_home(conf)
    if args.rotate:
        with _no_ingest(conf):
            fpr = keys.rotate(home, args.switch_in * DAY)
        logger.info("made key %s in %s; older keys expire in %d days, and "
                    "are retired %d days after that", fpr, home,
                    args.switch_in, conf["EXPIRE_DAYS"])
    else:
        with _no_ingest(conf):
            fpr, made = keys.ensure_key(home)
        logger.info("%s key %s in %s", "made" if made else "kept", fpr, home)
    valid = [k.fingerprint for k in keys.current(home)]
    return valid, keys.export(home, valid).decode() if args.export else None


def cmd_serve(args, conf):
    """Run the receiver under gunicorn on LISTEN."""
    from pyweb_popcon.server.intake import serve
    serve.run(conf, workers=args.workers)
    return 0


def cmd_dns_backend(args, conf):
    """Answer PowerDNS's remote backend for DNS_ZONE (the DNS receiver)."""
    from pyweb_popcon.server.intake import dnsreceive
    try:
        backend = dnsreceive.backend(conf)
        listener = dnsreceive.listener(args.socket)
    except ValueError as e:
        print(f"pyweb-popcon-server dns-backend: {e}", file=sys.stderr)
        return os.EX_CONFIG
    logger.info("answering PowerDNS for %s", conf["DNS_ZONE"])
    backend.serve(listener)
    return 0


def cmd_ingest(args, conf):
    """Decrypt, check and store everything in the spool."""
    from pyweb_popcon.server.admin import keys
    from pyweb_popcon.server.keyholder import ingest
    home = settings.gnupg_home(conf)
    # Without the key every submission would look addressed to a stranger
    # and be quarantined: refuse instead, and leave the spool as it is.
    if keys.fingerprint(home) is None:
        print(f"pyweb-popcon-server ingest: no secret key in {home}: run "
              "pyweb-popcon-server keygen; the spool is left as it is",
              file=sys.stderr)
        return os.EX_CONFIG
    with runs.recorded(conf["STATE_DIR"], "ingest") as run, \
            _store(conf) as store:
        summary = ingest.run(store, conf["SPOOL_DIR"], home,
                             conf["GPG_TIMEOUT"], workers=args.workers)
        run.summary = ingest.describe(summary)
        # Not all placed (a gpg hung or was killed): the journal says why,
        # and the unit fails, to run again on the files left.
        run.failed = bool(summary["left"])
    print(run.summary)
    return os.EX_TEMPFAIL if run.failed else 0


def _end_of(day):
    """Nanoseconds since the epoch at the last moment of `day` (UTC)."""
    start = datetime.datetime.combine(day + datetime.timedelta(days=1),
                                      datetime.time(),
                                      datetime.timezone.utc)
    return int(start.timestamp()) * 10**9 - 1


def cmd_expire(args, conf):
    """Delete hosts (and quarantined files) not heard from for N days, and
    retire server keys that expired N days ago."""
    from pyweb_popcon.server.admin import expire, keys
    days = args.days or conf["EXPIRE_DAYS"]
    now = _end_of(args.as_of) if args.as_of else time.time_ns()
    with runs.recorded(conf["STATE_DIR"], "expire") as run, \
            _store(conf) as store:
        hosts, removed = expire.run(store, conf["SPOOL_DIR"], days,
                                    now_ns=now)
        home = settings.gnupg_home(conf)
        retired = keys.retired(home, now // 10**9 - days * DAY)
        if retired:
            with _no_ingest(conf):
                keys.retire(home, retired)
        for fpr in retired:
            logger.info("retired key %s: it expired over %d days ago",
                        fpr, days)
        run.summary = (f"{hosts} hosts and {removed} quarantined "
                       f"submissions older than {days} days deleted"
                       + (f", {len(retired)} expired keys retired"
                          if retired else ""))
    print(run.summary)
    return 0


def cmd_aggregate(args, conf):
    """Write stats.json, the history, the text tables and index.html with
    its charts."""
    from pyweb_popcon.server.publish import aggregate
    with runs.recorded(conf["STATE_DIR"], "aggregate") as run, \
            _store(conf) as store:
        stats = aggregate.run(store, conf["OUTPUT_DIR"], conf["MIN_HOSTS"],
                              today=args.as_of,
                              expire_days=conf["EXPIRE_DAYS"],
                              publish=not args.no_publish,
                              note=conf["PAGE_NOTE"],
                              epsilon=conf["NOISE_EPSILON"])
        withheld = stats["hosts"] is None
        hosts = (f"fewer than MIN_HOSTS ({conf['MIN_HOSTS']}) hosts"
                 if withheld else f"{stats['hosts']} hosts")
        run.summary = f"{hosts} on {stats['generated']}" + (
            ", every figure withheld" if withheld else "")
    where = os.path.join(conf["OUTPUT_DIR"], published.PAGE)
    if args.no_publish:
        print(run.summary + ("; nothing recorded" if withheld
                             else "; recorded in the history"))
    else:
        print(run.summary + f"; published in {where}")
    return 0


def cmd_stats(args, conf):
    """Show the headline table from the database now."""
    from pyweb_popcon.server.publish import aggregate, rule
    today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    with _store(conf) as store:
        stats = rule.publication(store, conf["MIN_HOSTS"], today,
                                 conf["NOISE_EPSILON"])
    sys.stdout.write(aggregate.by_inst(stats))
    return 0


def cmd_status(args, conf):
    """Say how the server is doing: the spool, the last runs, the store and
    the keys; exit 1 when something needs attention."""
    from pyweb_popcon.server.admin import status
    with _store(conf) as store:
        report = status.gather(conf, store)
    sys.stdout.write(status.describe(report))
    return 1 if report.attention else 0


def cmd_requeue(args, conf):
    """Move quarantined submissions back to be ingested again (after a
    fix: a key imported, a catalogue updated), keeping their receive
    times."""
    spool = Spool(conf["SPOOL_DIR"])
    before = spool.by_reason()
    moved = spool.requeue(args.reason)
    print(f"{moved} quarantined submissions moved back into "
          f"{Spool.INCOMING}/"
          + (f" (reason {args.reason})" if args.reason else ""))
    if args.reason and not moved and before:
        print("quarantined by reason: " + ", ".join(
            f"{n} {reason}" for reason, n in sorted(before.items())),
            file=sys.stderr)
    return 0


COMMANDS = {"config": cmd_config, "keygen": cmd_keygen, "serve": cmd_serve,
            "dns-backend": cmd_dns_backend, "ingest": cmd_ingest,
            "expire": cmd_expire, "aggregate": cmd_aggregate,
            "stats": cmd_stats, "status": cmd_status, "requeue": cmd_requeue}


def parser():
    p = argparse.ArgumentParser(
        prog="pyweb-popcon-server",
        description="The server of pyweb-popcon: receive encrypted "
                    "reports, ingest them into one row per host, expire "
                    "hosts not heard from, and publish statistics in which "
                    "no count is smaller than MIN_HOSTS.")
    p.add_argument("--version", action="version",
                   version=f"%(prog)s {__version__}")
    p.add_argument("--config", metavar="FILE", default=settings.CONFIG,
                   help="configuration file (default %(default)s; "
                        "FILE.d/*.conf are read after it)")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="log debugging detail")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    subs = {name: sub.add_parser(name, help=func.__doc__.strip(),
                                 description=func.__doc__.strip())
            for name, func in COMMANDS.items()}
    subs["keygen"].add_argument(
        "--export", metavar="FILE",
        help="also write the armored public keys clients encrypt to into "
             "FILE (for their KEYRING)")
    subs["keygen"].add_argument(
        "--rotate", action="store_true",
        help="make a new key; the older keys expire after --switch-in days "
             "(clients then skip them) and are deleted EXPIRE_DAYS later")
    subs["keygen"].add_argument(
        "--switch-in", type=non_negative_int, metavar="DAYS", default=90,
        help="with --rotate: days until the older keys expire, for clients "
             "to get the new key first (default %(default)s)")
    subs["serve"].add_argument(
        "--workers", type=int, metavar="N",
        help="gunicorn worker processes (default: 2 per core)")
    subs["dns-backend"].add_argument(
        "--socket", metavar="PATH",
        help="listen on this Unix socket (default: the one systemd passes, "
             "from pyweb-popcon-dns.socket)")
    subs["ingest"].add_argument(
        "--workers", type=int, metavar="N",
        help="gpg processes at a time (default: one per core)")
    subs["expire"].add_argument(
        "--days", type=positive_int, metavar="N",
        help="age in days (default EXPIRE_DAYS)")
    for name in ("expire", "aggregate"):
        subs[name].add_argument(
            "--as-of", type=day, metavar="YYYY-MM-DD",
            help="act as at the end of that day (UTC), to replay past days "
                 "in order, as make demo does (default: now)")
    subs["aggregate"].add_argument(
        "--no-publish", action="store_true",
        help="only record the day's counts in the history; write no files")
    subs["requeue"].add_argument(
        "--reason", metavar="REASON",
        help="only the submissions quarantined for REASON (the first word "
             f"of their {Spool.REASON} file, as status lists them)")
    return p


# Whoever runs a command, it creates files with the units' UMask=, so a
# database (with its WAL and SHM files, which SQLite gives the database's
# mode) is 0640 whatever the umask of the shell it was started from.
UMASK = 0o027
# Commands that never open the database, so never read its password: the
# receiver above all.  The others find it in the configuration under
# PASSWORD (not a key: no file can set it).
NO_DATABASE = ("config", "keygen", "serve", "dns-backend")
PASSWORD = "database password"
# The user each command's unit runs as.  Run by root by hand, a command
# becomes that user, so it leaves no root-owned database, spool or output
# file behind that the units could no longer write.
RUNS_AS = {"serve": settings.RECEIVER_USER, "ingest": settings.INGEST_USER,
           "expire": settings.INGEST_USER, "aggregate": settings.INGEST_USER,
           "stats": settings.INGEST_USER, "status": settings.INGEST_USER,
           "requeue": settings.INGEST_USER,
           "dns-backend": settings.RECEIVER_USER}


def _unit_user(name):
    """The user `name`, when root runs a command by hand and the package
    made that user; else None (the command stays who it is)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(name)
    except KeyError:        # not installed from the package: stay root
        return None


def _become(user):
    os.setgroups([])
    os.setgid(user.pw_gid)
    os.setuid(user.pw_uid)
    logger.debug("running as %s, as the unit does", user.pw_name)


def _as_unit_user(command):
    user = command in RUNS_AS and _unit_user(RUNS_AS[command])
    if user:
        _become(user)


def _as_ingest_user(work, *args):
    """work(*args), in a child process that is the ingest user when root
    runs this by hand: its result (JSON: what comes back from the less
    trusted side is data, never objects), or its error as a ServerError."""
    user = _unit_user(settings.INGEST_USER)
    if not user:
        return work(*args)
    readable, writable = os.pipe()
    pid = os.fork()
    if pid == 0:                                # pragma: no cover (child)
        os.close(readable)
        code = 0
        try:
            _become(user)
            outcome = (True, work(*args))
        except (ServerError, OSError) as e:
            outcome = (False, str(e))
        except BaseException:
            logger.exception("as %s", user.pw_name)
            outcome, code = (False, "failed: see above"), 1
        with os.fdopen(writable, "w") as f:
            json.dump(outcome, f)
        os._exit(code)
    os.close(writable)
    with os.fdopen(readable) as f:
        data = f.read()
    os.waitpid(pid, 0)
    if not data:
        raise ServerError(f"the work as {user.pw_name} ended without a word")
    done, result = json.loads(data)
    if not done:
        raise ServerError(result)
    return result


def main(argv=None):
    args = parser().parse_args(argv)
    with journal.setup(settings.IDENTIFIER, args.verbose):
        return _run(args)


def _run(args):
    """The command `args` names, run: its exit status."""
    try:
        conf = settings.load(args.config)
        settings.check_writable(conf, args.command)
        # The site serves the packaged configuration's OUTPUT_DIR; a
        # configuration of one's own (tests, a demo) publishes elsewhere.
        if args.command == "aggregate" and os.path.abspath(
                args.config) == settings.CONFIG:
            settings.check_served(conf)
        if args.command not in NO_DATABASE:
            # Before becoming the unit's user: a root-only file serves.
            conf.values[PASSWORD] = settings.database_password(conf)
    except ConfigError as e:
        print(f"pyweb-popcon-server: configuration error: {e}",
              file=sys.stderr)
        return os.EX_CONFIG
    os.umask(UMASK)
    try:
        _as_unit_user(args.command)
        return COMMANDS[args.command](args, conf)
    except (ServerError, OSError) as e:
        print(f"pyweb-popcon-server {args.command}: {e}", file=sys.stderr)
        return os.EX_UNAVAILABLE
    except Exception as e:
        if not isinstance(e, _database_errors()):
            raise
        # Locked past the busy timeout, disk full, connection lost: the
        # transaction was rolled back, and what it would have removed
        # from the spool is still there for the next run.
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        print(f"pyweb-popcon-server {args.command}: the database failed, "
              f"nothing of the unfinished transaction was kept; try again "
              f"later: {first}", file=sys.stderr)
        return os.EX_TEMPFAIL


def _database_errors():
    """The database drivers' errors, of the drivers this run loaded (a
    command loads only the one it uses, if any)."""
    return tuple(sys.modules[name].Error for name in ("sqlite3", "psycopg")
                 if name in sys.modules)
