"""pytest set-up: import paths for the device code and the host tools; a
leftover-namespace sweep at the start (root on Linux); at the end, one line per
reason a level was skipped, with the command that makes it run.

Nothing Linux-only is imported here (nor at module level of a portable test
file): collection must work on macOS too (test_anywhere checks it)."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for sub in ("lib", "drivers", "boards", "tools", "host_tests"):
    path = os.path.join(ROOT, sub)
    if path not in sys.path:
        sys.path.insert(0, path)
import paths  # noqa: E402,F401  (tools/paths.py: tools/emu, net, bench, device on sys.path)
import levels  # noqa: E402


def pytest_sessionstart(session):
    """Namespaces left by a run that was killed hard (SIGKILL): their owner's
    lock is free.  Only uipy's own names (netns.leftovers)."""
    if not levels.LINUX or os.geteuid() != 0 or os.environ.get("UIPY_NO_SWEEP"):
        return
    try:
        import netns
        removed = netns.clean_leftovers()
    except Exception as e:          # never stop a test run for the sweep
        removed = ["(sweep failed: %s)" % e]
    if removed:
        sys.stderr.write("removed leftovers of an earlier run: %s\n" % ", ".join(removed))


def skipped_levels(reports):
    """[(reason, tests, files, command)] for the skipped reports, most tests first."""
    groups = {}
    for rep in reports:
        longrepr = rep.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
        if reason.startswith("Skipped: "):
            reason = reason[len("Skipped: "):]
        g = groups.setdefault(reason, [0, []])
        g[0] += 1
        name = os.path.basename(rep.nodeid.split("::")[0])
        if name not in g[1]:
            g[1].append(name)
    rows = [(r, n, files, levels.ENABLE.get(r, "make setup")) for r, (n, files) in groups.items()]
    return sorted(rows, key=lambda row: (-row[1], row[0]))


def pytest_terminal_summary(terminalreporter):
    rows = skipped_levels(terminalreporter.stats.get("skipped", []))
    if not rows:
        return
    tr = terminalreporter
    tr.write_sep("-", "skipped levels (%d tests): what would make them run" % sum(r[1] for r in rows))
    for reason, n, files, command in rows:
        where = ", ".join(files[:3]) + (", ..." if len(files) > 3 else "")
        tr.write_line("SKIPPED %d test%s in %d file%s (%s): %s -> %s"
                      % (n, "" if n == 1 else "s", len(files), "" if len(files) == 1 else "s",
                         where, reason, command))
