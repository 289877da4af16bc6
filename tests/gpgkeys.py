"""Throw-away OpenPGP keys made by the real gpg, for tests.

Keys are ed25519 (signing) with a cv25519 encryption subkey, as new server
keys are, and have no passphrase, so decrypting needs no agent prompt.
"""

import os
import subprocess
from dataclasses import dataclass

import gnupg

_PARAMETERS = """\
%no-protection
Key-Type: eddsa
Key-Curve: ed25519
Key-Usage: sign
Subkey-Type: ecdh
Subkey-Curve: cv25519
Subkey-Usage: encrypt
Name-Real: {name}
Name-Email: {name}@example.invalid
{dates}%commit
"""
# An expired key: made in 2020, valid for a month.
EXPIRED = "Creation-Date: 20200101T000000\nExpire-Date: 20200201T000000\n"


@dataclass(frozen=True)
class Keys:
    home: str           # a GNUPGHOME holding the secret key
    public: str         # the armored public key, as a file
    fingerprint: str    # of the primary key, 40 hex digits

    def decrypt(self, armored):
        """The plain text of a message encrypted to this key."""
        result = gnupg.GPG(gnupghome=self.home).decrypt(armored)
        if not result.ok:
            raise ValueError(f"cannot decrypt: {result.status}")
        return result.data

    def can_decrypt(self, armored):
        return gnupg.GPG(gnupghome=self.home).decrypt(armored).ok


def make_keys(directory, name="server", dates=""):
    """A new key pair in its own GNUPGHOME under `directory`."""
    home = os.path.join(directory, f"gnupg-{name}")
    os.makedirs(home, mode=0o700)
    gpg = gnupg.GPG(gnupghome=home)
    made = gpg.gen_key(_PARAMETERS.format(name=name, dates=dates))
    if not made.fingerprint:
        raise RuntimeError(f"gpg could not make a key: {made.stderr}")
    public = os.path.join(directory, f"{name}.asc")
    with open(public, "w") as f:
        f.write(gpg.export_keys(made.fingerprint))
    return Keys(home, public, made.fingerprint)


def stop_agents(keys):
    """End what gpg started for these keys' homes."""
    for k in keys:
        subprocess.run(["gpgconf", "--homedir", k.home, "--kill", "all"],
                       capture_output=True, check=False)
