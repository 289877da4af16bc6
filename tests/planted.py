"""A directory of root's files, a stand-in for /etc, for the tests that
plant links where another account writes: it must come through whatever
root runs."""

import os


def precious_tree(top):
    """A directory of root's files that nothing here may touch."""
    os.makedirs(os.path.join(top, "sub"))
    for name, mode in (("passwd", 0o644), ("shadow", 0o600),
                       ("sub/file", 0o644), ("report.asc", 0o644),
                       ("report.json", 0o644), ("state.json", 0o644)):
        path = os.path.join(top, name)
        with open(path, "w") as f:
            f.write(f"{name} must survive\n")
        os.chmod(path, mode)
    return top


def snapshot(top):
    """Every entry under top, top included: content, mode and owner."""
    found = {}
    for directory, dirs, names in os.walk(top):
        for name in ([] if directory != top else [""]) + dirs + names:
            path = os.path.join(directory, name)
            st = os.lstat(path)
            content = None
            if name in names:
                with open(path, "rb") as f:
                    content = f.read()
            found[os.path.relpath(path, top)] = (content, st.st_mode,
                                                 st.st_uid, st.st_gid)
    return found
