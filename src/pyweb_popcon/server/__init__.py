"""The maintainers' side of pyweb-popcon: receive, ingest, expire, aggregate.

The receiver only ever sees ciphertext; ingest holds the private key and
turns the spool into one row per host; expire forgets hosts not seen for
EXPIRE_DAYS; aggregate publishes counts no smaller than MIN_HOSTS.
"""
