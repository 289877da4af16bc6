"""The server: what the project's maintainers run, one package per trust
boundary, each matching a system user and its units.

    intake/     the receivers (HTTPS and DNS): face strangers, write
                ciphertext into the spool; never GnuPG, the store or the key
    keyholder/  GnuPG, judging and ingest: hold the private key, judge
                each submission, store it or quarantine it
    store/      the database: schema, migrations, partitions, raw counts
    publish/    the publication rule, noise, history, statistics, charts,
                the page
    admin/      the maintainer's commands: cli, run records, status, the
                key pair, expiry
    spool.py, settings.py   what every unit reads: the spool's layout and
                the configuration
    published.py  the names of what is published (files, "other", titles):
                for publishing and the receiver alike
    progress.py   the progress bar of ingest, expire and aggregate by hand
"""


class ServerError(Exception):
    """A server command cannot do its work (a broken key, database or
    tool); the message says what to fix."""
