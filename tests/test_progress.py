"""The progress bar (tqdm): drawn on a terminal and cleared after, never with colour, ASCII under
NO_COLOR, and absent when stderr is not a terminal or with --quiet."""
from __future__ import annotations

import fcntl
import os
import struct
import subprocess
import sys
import termios

from grader.grading import progress_bar
from grader.settings import Settings
from tests.conftest import ROOT

CHILD = """
import sys
from grader.grading import progress_bar
from grader.settings import Settings
show = progress_bar(Settings(quiet={quiet}), "ex1")
print("bar" if show else "none", file=sys.stderr)
if show:
    import time
    for i in range(11):
        show(i, 10)
        time.sleep(0.03)
"""


def _on_terminal(env: dict[str, str], quiet: bool = False) -> bytes:
    """Run the bar in a child whose stderr is a 100-column pseudo-terminal; what it drew."""
    leader, follower = os.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    environ = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    environ.update(env, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", CHILD.format(quiet=quiet)], stderr=follower,
                            stdout=subprocess.DEVNULL, env=environ)
    os.close(follower)
    out = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:            # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(leader)
    assert proc.wait(timeout=60) == 0
    return out


def test_bar_on_a_terminal_is_drawn_then_cleared_without_colour():
    out = _on_terminal({})
    assert out.startswith(b"bar")
    assert b"ex1:" in out and b"/10" in out and "█".encode() in out
    assert out.endswith(b"\r") and out.split(b"\r")[-2].strip() == b""   # leave=False: the line is cleared
    assert b"\x1b[3" not in out                      # no colour codes at all


def test_no_color_makes_it_ascii():
    out = _on_terminal({"NO_COLOR": "1"})
    assert b"ex1:" in out and b"#" in out and "█".encode() not in out and b"\x1b[3" not in out


def test_quiet_on_a_terminal_draws_nothing():
    out = _on_terminal({}, quiet=True)
    assert out.strip() == b"none"


def test_not_a_terminal_has_no_bar(capsys):
    assert progress_bar(Settings(), "ex1") is None     # pytest's captured stderr is not a terminal
