"""HTTPS to a server whose certificate comes from a private authority:
CA_FILE names it, and only it is trusted then."""

from transport_fixtures import (certificate, client, fast,  # noqa: F401
                                tls_server)

CA = "/etc/ssl/popcon-test-ca.pem"


def test_ca_file_makes_the_server_trusted(client, tls_server, certificate):
    with open(certificate[0]) as f:
        client.machine.file(CA, f.read())
    url = tls_server.url(scheme="https")
    # The system's authorities do not know it...
    client.configure(url)
    assert client.run("collect").code == 0
    run = client.run("upload")
    assert run.code == 75 and "[SSL: CERTIFICATE_VERIFY_FAILED]" in run.err
    # ...CA_FILE does.
    client.configure(url, extra=f'CA_FILE="{CA}"\n')
    run = client.run("upload")
    assert run.code == 0, run.err
    assert len(tls_server.requests) == 1
    assert client.pending() is None
    assert client.state().receipt == "r-1"


def test_unreadable_ca_file_names_it_and_keeps_the_report(client, tls_server):
    client.configure(tls_server.url(scheme="https"), extra=f'CA_FILE="{CA}"\n')
    assert client.run("collect").code == 0
    run = client.run("upload")
    assert run.code == 75
    assert (f"delivery failed: cannot read CA_FILE {client.machine.path(CA)} "
            f"(set in {client.machine.path('/etc/pyweb-popcon.conf')}:4): "
            "No such file or directory; the report stays in the outbox"
            ) in run.err
    assert tls_server.requests == []
    assert client.pending()
    assert "attempt" not in run.err     # not tried, so not retried
