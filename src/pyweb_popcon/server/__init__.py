"""The server: what the project's maintainers run.

`receive` (served by `serve`) only ever sees ciphertext and spools it;
`gpg` holds everything GnuPG (the key, decryption); `ingest` turns the
spool into one row per host in the `store`; `expire` forgets hosts not
seen for EXPIRE_DAYS; `aggregate` (with `charts`) publishes counts no
smaller than MIN_HOSTS.  `cli` is the `pyweb-popcon-server` command and
`settings` its configuration.
"""


class ServerError(Exception):
    """A server command cannot do its work (a broken key, database or
    tool); the message says what to fix."""
