"""The HTTPS transport's pieces that need no server: routes, headers."""

from pyweb_popcon.client import https, settings
from pyweb_popcon.common.conffile import Config


def conf(**values):
    chosen = {k: key.check(key.default) for k, key in settings.KEYS.items()}
    chosen.update(values)
    return Config(chosen, [], {})


def test_routes(monkeypatch):
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    assert https.route(conf()) == (None, "directly")
    proxy = "http://user:secret@proxy.example:3128"
    proxies, how = https.route(conf(HTTP_PROXY=proxy))
    assert proxies == {"http": proxy, "https": proxy}
    assert how == "through the proxy http://proxy.example:3128"
    tor = "socks5h://127.0.0.1:9050"
    assert https.route(conf(USE_TOR="yes", HTTP_PROXY=proxy)) == (
        {"http": tor, "https": tor}, f"through Tor ({tor})")
    monkeypatch.setenv("https_proxy", "http://env.example:8080")
    assert https.route(conf()) == (
        None, "through the environment's proxy http://env.example:8080")


def test_headers_name_only_the_program():
    assert https.HEADERS == {
        "Content-Type": "application/pgp-encrypted",
        "User-Agent": f"pyweb-popcon/{https.__version__}"}
