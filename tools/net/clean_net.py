"""make clean-net: remove what a killed demo or test run left behind (root, Linux).

Namespaces named by netns.unique_name() (uipyns<n>) whose owner is gone, with
the processes in them (dnsmasq, MicroPython, ...), stale lock files and
unattached uipy TAPs; nothing of any other name.  --force also removes uipy
namespaces that have no lock file at all (made by a checkout older than the
lock files): only when no such run is still going.

    python3 tools/net/clean_net.py [--force] [--list]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import paths  # noqa: E402,F401


def main(argv):
    if not sys.platform.startswith("linux"):
        print("clean-net: nothing to do (network namespaces are Linux only)")
        return 0
    if os.geteuid() != 0:
        print("clean-net: needs root (sudo make clean-net)", file=sys.stderr)
        return 2
    import netns
    force = "--force" in argv
    if "--list" in argv:
        for name in netns.leftovers(force):
            print(name)
        return 0
    removed = netns.clean_leftovers(force)
    print("clean-net: removed %s" % (", ".join(removed) if removed else "nothing (no uipy leftovers)"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
