"""upload against every way a server can fail: each run ends within its
bound, says what happened, and keeps the report (exit 75) or, for a
permanent 4xx, drops it."""

import pytest

from transport_fixtures import (FAST, certificate, client,  # noqa: F401
                                fast, server, tls_server)
from transport_servers import free_port, status_line

BOUND = FAST.run + 0.5          # the run's limit, and a little for the rest

# name: (behaviour, url kind, log text, requests the server sees)
TEMPORARY = {
    "refused": (None, "refused", "the connection failed: Connection "
                "refused", 0),
    "silent": (("silent",), "plain", "no reply in time", 3),
    "slow trickle": (("trickle",), "plain", "no complete reply within "
                     "1.5 s", 3),
    "500": (("status", 500), "plain", status_line(500), 3),
    "503": (("status", 503), "plain", status_line(503), 3),
    "408": (("status", 408), "plain", status_line(408), 3),
    "429": (("status", 429), "plain", status_line(429), 3),
    "garbage reply": (("not_http",), "plain", "the reply is not HTTP: "
                      "SSH-2.0-OpenSSH_9.2", 3),
    "garbage 202": (("garbage_202",), "plain", status_line(202) + ", but "
                    'the reply is not {"status": "ok", "receipt": ...}', 3),
    "redirect loop": (("redirect",), "plain", status_line(302) + ", a "
                      "redirect to /submit, which is not followed", 3),
    "TLS to a plain port": (("ok",), "https-plain", "TLS failed: ", 0),
    "TLS self-signed": (("ok",), "https-tls", "TLS failed: "
                        "[SSL: CERTIFICATE_VERIFY_FAILED]", 0),
}


def _url(kind, server, tls_server):
    return {"refused": f"http://127.0.0.1:{free_port()}/submit",
            "plain": server.url(),
            "https-plain": server.url(scheme="https"),
            "https-tls": tls_server.url(scheme="https")}[kind]


@pytest.mark.parametrize("name", TEMPORARY)
def test_temporary_failures_keep_the_report(client, server, tls_server,
                                            name):
    behaviour, kind, said, requests = TEMPORARY[name]
    client.configure(_url(kind, server, tls_server))
    assert client.run("collect").code == 0
    server.behaviour = behaviour
    run = client.run("upload")
    assert run.code == 75, run.err
    assert run.seconds < BOUND
    assert len(server.requests) == requests
    assert client.pending(), "the report stays in the outbox"
    assert said in run.err
    assert "; the report stays in the outbox for the next run" in run.err
    assert "attempt 2 to " in run.err        # it did retry
    st = client.state()
    assert st.result.startswith("delivery failed: ")
    assert st.last_success is None


@pytest.mark.parametrize("status", [400, 404, 413])
def test_permanent_4xx_drops_the_report(client, server, status):
    client.configure(server.url())
    assert client.run("collect").code == 0
    server.behaviour = ("status", status)
    run = client.run("upload")
    assert run.code == 76
    assert run.seconds < 1
    assert len(server.requests) == 1         # no retry: it will not change
    assert client.pending() is None
    assert (f"delivery failed: {status_line(status)}: the server refuses "
            "it for good; the report is dropped") in run.err


def test_the_next_run_sends_what_was_kept(client, server):
    client.configure(server.url())
    assert client.run("collect").code == 0
    server.behaviour = ("status", 503)
    assert client.run("upload").code == 75
    server.behaviour = ("ok",)
    run = client.run("upload")
    assert run.code == 0
    assert client.pending() is None
    bodies = {r["body"] for r in server.requests}
    assert len(bodies) == 1                  # the same ciphertext each time
    assert "Last attempt: " in client.run("status").out
