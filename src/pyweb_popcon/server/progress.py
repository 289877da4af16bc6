"""Progress bars for long runs by hand: on a terminal, and nowhere else.

tqdm (python3-tqdm) draws the bar, with the rate and the time left, and
with disable=None draws nothing when stderr is not a terminal: under
systemd (stderr is the journal), in a pipe or a test, a run stays quiet.
"""

from tqdm import tqdm


def bar(total, unit, what):
    """A bar counting `total` `unit`s of `what`; update(n), close()."""
    return tqdm(total=total, unit=unit, desc=what, disable=None,
                leave=False, dynamic_ncols=True)
