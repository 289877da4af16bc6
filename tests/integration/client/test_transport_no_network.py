"""Not participating, or DO_NOT_TRACK=1: no socket at all, no request.

Each command runs in its own interpreter with an audit hook installed
before pyweb_popcon is imported (tests/cli_run.py), so every socket the
process would create or connect is seen; the test server counts requests.
A report collected earlier waits in the outbox, so there is something
that would be sent.
"""

import pytest

from cli_run import run_cli
from transport_fixtures import client, fast, files_under, server  # noqa: F401

COMMANDS = (["collect"], ["upload"], ["upload", "--force"], ["submit"],
            ["submit", "--force"], ["submit", "--dry-run"])


@pytest.mark.parametrize("why", ["config", "DO_NOT_TRACK"])
def test_nothing_goes_out(client, server, why):
    client.configure(server.url())
    assert client.run("collect").code == 0
    if why == "config":
        client.machine.config(
            f'PARTICIPATE="no"\nSUBMIT_URL="{server.url()}"\n'
            f'KEY_FINGERPRINTS="{client.keys.fingerprint}"\n')
        env, said = {}, "not participating: PARTICIPATE is no"
        commands = COMMANDS
    else:
        env = {"DO_NOT_TRACK": "1"}
        said = "not participating: DO_NOT_TRACK is set in the environment"
        commands = COMMANDS + (["forget"],)
    before = files_under(client.machine.top)
    for command in commands:
        run = run_cli([*command, "--root", client.machine.top], env=env)
        assert run.socket_events == [], command
        if command == ["forget"]:
            assert run.code == 78 and "DO_NOT_TRACK is set" in run.stderr
        else:
            assert run.code == 0, run.stderr
            assert said in run.stderr
    assert server.requests == []
    assert files_under(client.machine.top) == before
