"""Judging what gpg did with one submission: its plaintext, or the
reason it is quarantined, from gpg's status words."""

import os

from pyweb_popcon import report
from pyweb_popcon.openpgp import is_encrypted_message

# The key ID of a hidden recipient (gpg --hidden-recipient).
_HIDDEN = "0000000000000000"
# Status keywords a signature brings (gpg --sign, --clearsign).
_SIGNATURE = {"NEWSIG", "GOODSIG", "BADSIG", "ERRSIG", "EXPSIG", "EXPKEYSIG",
              "REVKEYSIG", "VALIDSIG"}


class Outcome:
    """What decrypting one file gave: `plaintext`, or `reason` and `detail`."""

    __slots__ = ("plaintext", "reason", "detail")

    def __init__(self, plaintext=None, reason=None, detail=""):
        self.plaintext, self.reason, self.detail = plaintext, reason, detail


def judge(status, plain_path, own):
    """The Outcome of a file gpg finished with `status`, its plaintext (if
    any) in `plain_path`; `own` holds the key IDs of this server's secret
    keys and subkeys."""
    keywords = {w[0] for w in status}
    if "DECRYPTION_OKAY" in keywords:
        return _plaintext(plain_path)
    if "NEED_PASSPHRASE_SYM" in keywords:
        # Decrypting needs a passphrase, never given: no key is tried.
        return Outcome(reason="symmetric",
                       detail="encrypted with a passphrase, not to this "
                              "server's key")
    if "ENC_TO" in keywords:
        keys = {w[1] for w in status if w[0] == "ENC_TO"}
        # To this server: a session key names one of its keys, or one of
        # them opened a session key (DECRYPTION_KEY: the only sign for a
        # hidden recipient).  Neither KEY_CONSIDERED nor NO_SECKEY tells:
        # gpg 2.4 considers its own key for any message, and says
        # NO_SECKEY for its own key when the session key is damaged.
        if "DECRYPTION_KEY" in keywords or keys & own:
            return Outcome(reason="undecryptable",
                           detail="encrypted to this server's key, but gpg "
                                  "could not decrypt it (damaged or cut "
                                  "short)")
        if keys == {_HIDDEN}:
            return Outcome(reason="wrong-key",
                           detail="encrypted to a hidden recipient, not to "
                                  "this server's key")
        return Outcome(reason="wrong-key",
                       detail=f"encrypted to {' '.join(sorted(keys))}, "
                              "not to this server's key")
    if keywords & _SIGNATURE:
        return Outcome(reason="signed",
                       detail="signed but not encrypted")
    if "PLAINTEXT" in keywords:
        return Outcome(reason="not-encrypted",
                       detail="OpenPGP data that is not encrypted")
    if keywords <= {"NODATA"}:
        if not os.access(plain_path + ".asc", os.R_OK):
            return Outcome(reason="undecryptable",
                           detail="ingest may not read it")
        return Outcome(reason="not-openpgp",
                       detail="no OpenPGP data in it")
    return Outcome(reason="undecryptable",
                   detail=f"gpg could not decrypt it ("
                          f"{' '.join(sorted(keywords))})")


TOO_LARGE = Outcome(reason="too-large",
                     detail=f"decrypts to more than {report.MAX_BYTES} bytes")


def _plaintext(path):
    try:
        with open(path, "rb") as f:
            # Written under a file-size limit of MAX_BYTES + 1: reading
            # that much shows whether there was more.
            plaintext = f.read(report.MAX_BYTES + 1)
    except FileNotFoundError:
        return Outcome(reason="undecryptable", detail="gpg wrote nothing")
    if len(plaintext) > report.MAX_BYTES:
        return TOO_LARGE
    if is_encrypted_message(plaintext):
        return Outcome(reason="nested",
                       detail="decrypts to another encrypted message")
    return Outcome(plaintext=plaintext)
