"""The maintainer's commands: run by root or a maintainer, each command as
its unit's user; run records, status, the key pair, expiry."""
