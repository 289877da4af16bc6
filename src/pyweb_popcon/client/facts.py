"""What a report says about the machine itself: OS, virtualisation, Pythons."""

import glob
import os
import re
import subprocess

from pyweb_popcon import report
from pyweb_popcon.common.conffile import ConfigError, assignments

UNKNOWN = "unknown"


def _fields(root, *candidates):
    """KEY=value pairs of the first readable shell-style file."""
    for path in candidates:
        try:
            with open(root.path(path), encoding="utf-8") as f:
                return {k: v for k, v, _ in assignments(f.read().splitlines(),
                                                         path)}
        except (OSError, UnicodeDecodeError, ConfigError):
            continue
    return {}


def _clean(value, pattern):
    """`value` if a report may carry it, else "unknown"."""
    return value if value and pattern.fullmatch(value) else UNKNOWN


def operating_system(root, architecture):
    """Vendor (as dpkg knows it), release and dpkg architecture."""
    vendor = None
    try:
        with open(root.path("/etc/dpkg/origins/default"),
                  encoding="utf-8") as f:
            vendor = next((line.split(":", 1)[1].strip() for line in f
                           if line.startswith("Vendor:")), None)
    except (OSError, UnicodeDecodeError):
        pass
    release = _fields(root, "/etc/os-release", "/usr/lib/os-release")
    vendor = vendor or release.get("NAME", "").split(" ")[0]
    version = release.get("VERSION_ID") or release.get("VERSION_CODENAME")
    return report.OS(_clean(vendor, report.VENDOR),
                     _clean(version, report.RELEASE),
                     _clean(architecture, report.ARCH))


def virtualisation(root, given=None):
    """none, vm or container, from systemd-detect-virt on a live system."""
    if given or not root.is_system:
        return given or "none"
    for flag, kind in (("--container", "container"), ("--vm", "vm")):
        try:
            done = subprocess.run(["systemd-detect-virt", "--quiet", flag],
                                  stdin=subprocess.DEVNULL,
                                  capture_output=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return "none"
        if done.returncode == 0:
            return kind
    return "none"


def pythons(root):
    """The python3.X interpreters installed system-wide, as "3.X"."""
    found = set()
    for pattern in ("/usr/bin/python3.*", "/usr/local/bin/python3.*"):
        for path in glob.glob(root.path(pattern)):
            m = re.fullmatch(r"python(3\.[0-9]{1,2})", os.path.basename(path))
            if m and os.access(path, os.X_OK):
                found.add(m.group(1))
    return tuple(sorted(found, key=lambda v: int(v.split(".")[1])))
