"""The maintainer's commands: run by root or a maintainer, each command as
its unit's user; run records, status, expiry (store and quarantine)."""
