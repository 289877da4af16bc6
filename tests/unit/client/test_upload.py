"""The transport's pieces that need no server: limits, routes, log fields."""

import logging

from systemd.journal import JournalHandler

from pyweb_popcon.client import settings, upload
from pyweb_popcon.common import journal
from pyweb_popcon.common.conffile import Config


def conf(**values):
    chosen = {k: key.check(key.default) for k, key in settings.KEYS.items()}
    chosen.update(values)
    return Config(chosen, [], {})


def test_production_limits_stay_under_five_minutes():
    limits = upload.Limits()
    assert upload.LIMITS == limits
    attempts = len(limits.backoff) + 1
    assert attempts == 3
    assert attempts * limits.attempt + sum(limits.backoff) <= limits.run
    assert limits.run < 300
    assert limits.connect < limits.attempt and limits.read < limits.attempt
    assert limits.tor == ("127.0.0.1", 9050)


def test_routes(monkeypatch):
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    assert upload.route(conf()) == (None, "directly")
    proxy = "http://user:secret@proxy.example:3128"
    proxies, how = upload.route(conf(HTTP_PROXY=proxy))
    assert proxies == {"http": proxy, "https": proxy}
    assert how == "through the proxy http://proxy.example:3128"
    tor = "socks5h://127.0.0.1:9050"
    assert upload.route(conf(USE_TOR="yes", HTTP_PROXY=proxy)) == (
        {"http": tor, "https": tor}, f"through Tor ({tor})")
    monkeypatch.setenv("https_proxy", "http://env.example:8080")
    assert upload.route(conf()) == (
        None, "through the environment's proxy http://env.example:8080")


def test_headers_name_only_the_program():
    assert upload.HEADERS == {
        "Content-Type": "application/pgp-encrypted",
        "User-Agent": f"pyweb-popcon/{upload.__version__}"}


def test_log_fields_reach_the_journal_handler(monkeypatch):
    entries = []
    handler = JournalHandler(SYSLOG_IDENTIFIER=settings.IDENTIFIER,
                             sender_function=lambda MESSAGE, **fields:
                             entries.append({"MESSAGE": MESSAGE, **fields}))
    logger = logging.getLogger("pyweb_popcon.test")
    monkeypatch.setattr(logger, "propagate", False)
    logger.addHandler(handler)
    try:
        logger.warning("failed", extra=journal.fields(
            upload.DELIVERY_FAILED, HTTP_STATUS=503, RECEIPT=None))
    finally:
        logger.removeHandler(handler)
    [entry] = entries
    assert entry["MESSAGE"] == "failed"
    assert entry["MESSAGE_ID"] == upload.DELIVERY_FAILED
    assert entry["HTTP_STATUS"] == "503" and "RECEIPT" not in entry
    assert entry["SYSLOG_IDENTIFIER"] == "pyweb-popcon"
    assert len({upload.REPORT_SENT, upload.DELIVERY_FAILED,
                upload.FORGET_SENT}) == 3
