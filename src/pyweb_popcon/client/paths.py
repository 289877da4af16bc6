"""The tree the client looks at, and where the client keeps its files.

Every path is a system path (/etc/..., /var/lib/...) looked up in a Root:
/ on a real machine, any DIR with --root, as dpkg --root does.
"""

import os

CONFIG = "/etc/pyweb-popcon.conf"
DROPINS = "/etc/pyweb-popcon.conf.d"
STATE_DIR = "/var/lib/pyweb-popcon"
# Home directories: looked at only with SCAN_HOMES="yes".
HOMES = ("/home", "/root")


class Root:
    """Maps absolute system paths into the tree."""

    def __init__(self, top="/"):
        self.top = os.path.abspath(top)

    @property
    def is_system(self):
        return self.top == "/"

    def path(self, system_path):
        return os.path.join(self.top, system_path.lstrip("/"))

    def system_path(self, path):
        """The system path that `path`, inside the tree, stands for."""
        return "/" + os.path.relpath(path, self.top)

    def __repr__(self):
        return f"Root({self.top!r})"
