"""pyweb-popcon-server: the command a maintainer of the server runs.

Each command imports what it runs when it runs: `serve`, facing the
internet, never loads GnuPG, the store or the charts.
"""

import argparse
import logging
import os
import pwd
import sys

from pyweb_popcon import __version__
from pyweb_popcon.common import journal
from pyweb_popcon.common.conffile import ConfigError, positive_int, quote
from pyweb_popcon.server import ServerError, settings


logger = logging.getLogger(__name__)


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
    """Make the server key pair if there is none; print its fingerprint."""
    from pyweb_popcon.common import files
    from pyweb_popcon.server import gpg
    home = settings.gnupg_home(conf)
    fpr, made = gpg.ensure_key(home)
    logger.info("%s key %s in %s", "made" if made else "kept", fpr, home)
    if args.export:
        files.write_atomic(os.path.abspath(args.export),
                           gpg.export(home, fpr))
    print(fpr)
    return 0


def cmd_serve(args, conf):
    """Run the receiver under gunicorn on LISTEN."""
    from pyweb_popcon.server import serve
    serve.run(conf, workers=args.workers)
    return 0


def cmd_dns_backend(args, conf):
    """Answer PowerDNS's remote backend for DNS_ZONE (the DNS receiver)."""
    from pyweb_popcon.server import dnsreceive
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
    from pyweb_popcon.server import gpg, ingest
    home = settings.gnupg_home(conf)
    # Without the key every submission would look addressed to a stranger
    # and be quarantined: refuse instead, and leave the spool as it is.
    if gpg.fingerprint(home) is None:
        print(f"pyweb-popcon-server ingest: no secret key in {home}: run "
              "pyweb-popcon-server keygen; the spool is left as it is",
              file=sys.stderr)
        return os.EX_CONFIG
    with _store(conf) as store:
        summary = ingest.run(store, conf["SPOOL_DIR"], home,
                             conf["GPG_TIMEOUT"], workers=args.workers)
    print(ingest.describe(summary))
    # Not all placed (a gpg hung or was killed): the journal says why, and
    # the unit fails, to run again on the files left.
    return os.EX_TEMPFAIL if summary["left"] else 0


def cmd_expire(args, conf):
    """Delete hosts (and quarantined files) not heard from for N days."""
    from pyweb_popcon.server import expire
    days = args.days or conf["EXPIRE_DAYS"]
    with _store(conf) as store:
        hosts, removed = expire.run(store, conf["SPOOL_DIR"], days)
    print(f"{hosts} hosts and {removed} quarantined submissions older than "
          f"{days} days deleted")
    return 0


def cmd_aggregate(args, conf):
    """Write stats.json, by_inst.txt, by_version.txt and index.html."""
    from pyweb_popcon.server import aggregate
    with _store(conf) as store:
        stats = aggregate.run(store, conf["OUTPUT_DIR"], conf["MIN_HOSTS"],
                              epsilon=conf["NOISE_EPSILON"])
    what = (f"{stats['hosts']} hosts" if stats["hosts"] is not None else
            f"fewer than MIN_HOSTS ({conf['MIN_HOSTS']}) hosts, every figure "
            "withheld")
    print(f"{what}; published in "
          f"{os.path.join(conf['OUTPUT_DIR'], 'index.html')}")
    return 0


def cmd_stats(args, conf):
    """Show the headline table from the database now."""
    import datetime

    from pyweb_popcon.server import aggregate
    today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    with _store(conf) as store:
        stats = aggregate.publication(store, conf["MIN_HOSTS"], today,
                                      conf["NOISE_EPSILON"])
    sys.stdout.write(aggregate.by_inst(stats))
    return 0


COMMANDS = {"config": cmd_config, "keygen": cmd_keygen, "serve": cmd_serve,
            "dns-backend": cmd_dns_backend, "ingest": cmd_ingest,
            "expire": cmd_expire,
            "aggregate": cmd_aggregate, "stats": cmd_stats}


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
        help="also write the armored public key to FILE (for clients' "
             "KEYRING)")
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
           "stats": settings.INGEST_USER,
           "dns-backend": settings.RECEIVER_USER}


def _as_unit_user(command):
    if os.geteuid() != 0 or command not in RUNS_AS:
        return
    try:
        user = pwd.getpwnam(RUNS_AS[command])
    except KeyError:        # not installed from the package: stay root
        return
    os.setgroups([])
    os.setgid(user.pw_gid)
    os.setuid(user.pw_uid)
    logger.debug("running as %s, as the unit does", user.pw_name)


def main(argv=None):
    args = parser().parse_args(argv)
    journal.setup(settings.IDENTIFIER, args.verbose)
    try:
        conf = settings.load(args.config)
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
