"""Delivery's pieces that need no server: limits, log fields."""

import logging

from systemd.journal import JournalHandler

from pyweb_popcon.client import delivery, settings
from pyweb_popcon.common import journal


def test_production_limits_stay_under_five_minutes():
    limits = delivery.Limits()
    assert delivery.LIMITS == limits
    attempts = len(limits.backoff) + 1
    assert attempts == 3
    assert attempts * limits.attempt + sum(limits.backoff) <= limits.run
    assert limits.run < 300
    assert limits.connect < limits.attempt and limits.read < limits.attempt
    assert limits.tor == ("127.0.0.1", 9050)


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
            delivery.DELIVERY_FAILED, HTTP_STATUS=503, RECEIPT=None))
    finally:
        logger.removeHandler(handler)
    [entry] = entries
    assert entry["MESSAGE"] == "failed"
    assert entry["MESSAGE_ID"] == delivery.DELIVERY_FAILED
    assert entry["HTTP_STATUS"] == "503" and "RECEIPT" not in entry
    assert entry["SYSLOG_IDENTIFIER"] == "pyweb-popcon"
    assert len({delivery.REPORT_SENT, delivery.DELIVERY_FAILED,
                delivery.FORGET_SENT}) == 3
