"""The ways out: HTTPS with a verified certificate, an HTTP proxy from the
configuration or the environment, Tor (a SOCKS5 server here) when asked.
The submission URL names popcon.test, which does not resolve on this
machine: only the proxies know it, so a report that arrives went through
them, and through Tor the name never reached the local resolver."""

import dataclasses

import pytest

from pyweb_popcon import report
from pyweb_popcon.client import delivery
from transport_fixtures import (certificate, client, fast,  # noqa: F401
                                server, tls_server)
from transport_servers import HTTPProxy, Socks5

HOST = "popcon.test"


def arrived(client, server):
    """The one report the server got, decrypted."""
    [request] = server.requests
    return report.parse(client.keys.decrypt(request["body"]))


def test_https_with_a_verified_certificate(client, tls_server, certificate,
                                           monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certificate[0])
    client.configure(tls_server.url(scheme="https"))
    run = client.run("submit")
    assert run.code == 0, run.err
    assert arrived(client, tls_server).host_id == client.host_id()


@pytest.fixture
def proxy(server, tls_server):
    p = HTTPProxy({HOST: "127.0.0.1"}).start()
    yield p
    p.stop()


def test_proxy_from_the_configuration(client, server, proxy):
    client.configure(server.url(HOST), f'HTTP_PROXY="{proxy.url}"\n')
    run = client.run("submit")
    assert run.code == 0, run.err
    assert proxy.seen == [("POST", server.url(HOST))]
    assert arrived(client, server).host_id == client.host_id()


def test_proxy_from_the_environment(client, server, proxy, monkeypatch):
    monkeypatch.setenv("http_proxy", proxy.url)
    client.configure(server.url(HOST))
    assert "through the environment's proxy http://127.0.0.1:" \
        in client.run("submit", "--dry-run").out
    run = client.run("submit")
    assert run.code == 0, run.err
    assert proxy.seen == [("POST", server.url(HOST))]


def test_https_through_the_proxy(client, tls_server, proxy, certificate,
                                 monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certificate[0])
    client.configure(tls_server.url(HOST, "https"),
                     f'HTTP_PROXY="{proxy.url}"\n')
    run = client.run("submit")
    assert run.code == 0, run.err
    assert proxy.seen == [("CONNECT", f"{HOST}:{tls_server.port}")]
    assert arrived(client, tls_server).host_id == client.host_id()


@pytest.fixture
def tor(monkeypatch, server, fast):
    socks = Socks5({HOST: "127.0.0.1"}).start()
    monkeypatch.setattr(delivery, "LIMITS", dataclasses.replace(
        fast, tor=("127.0.0.1", socks.port)))
    yield socks
    socks.stop()


@pytest.mark.parametrize("use_tor", ["yes", "maybe"])
def test_tor_carries_the_report_and_the_name(client, server, tor, proxy,
                                             use_tor):
    # An HTTP proxy is configured too: Tor wins over it.
    client.configure(server.url(HOST), f'USE_TOR="{use_tor}"\n'
                     f'HTTP_PROXY="{proxy.url}"\n')
    run = client.run("submit")
    assert run.code == 0, run.err
    assert tor.seen == [(HOST, server.port)]        # socks5h: Tor resolves
    assert proxy.seen == []
    assert arrived(client, server).host_id == client.host_id()


def test_tor_yes_without_tor_fails_rather_than_going_direct(client, server):
    client.configure(server.url(), 'USE_TOR="yes"\n')    # nothing on FAST.tor
    run = client.run("submit")
    assert run.code == 75
    assert ("delivery failed: the connection failed: Connection refused, "
            "sending through Tor (socks5h://127.0.0.1:") in run.err
    assert server.requests == []
    assert client.pending()


def test_tor_maybe_without_tor_goes_direct(client, server):
    client.configure(server.url(), 'USE_TOR="maybe"\n')
    run = client.run("submit")
    assert run.code == 0, run.err
    assert len(server.requests) == 1
