"""The tree a command looks at: / on a real machine, any DIR with --root."""

import os


class Root:
    """Maps absolute system paths into the tree, as dpkg --root does."""

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
