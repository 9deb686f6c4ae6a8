"""pytest set-up: import paths for the device code and the host tools."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for sub in ("lib", "drivers", "boards", "tools", "host_tests"):
    path = os.path.join(ROOT, sub)
    if path not in sys.path:
        sys.path.insert(0, path)
import paths  # noqa: E402,F401  (tools/paths.py: tools/emu, net, bench, device on sys.path)
