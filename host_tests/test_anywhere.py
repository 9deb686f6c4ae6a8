"""`make test` where users are: an ordinary user, without the Debian tools,
maybe not on Linux.  The portable levels run, the others are skipped with one
summary line each (reason and the command that enables them), `make setup`
only warns; under CI=true every one of those is a failure.

The unprivileged run drops root with setpriv to nobody in a copy of the
checkout owned by nobody (as a user's own clone would be), with a PATH that
holds the usual system commands minus the Debian packages' ones.  On this
machine the venv's interpreter lives under /root (mode 0700), so that user
keeps one capability, CAP_DAC_READ_SEARCH (read any file, nothing else: no
namespaces, no TAP, no writing); make checks a command with access(), which
ignores capabilities, so make calls the interpreter through env.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
from types import SimpleNamespace

import pytest

from levels import DEBIAN, ROOT, run, tool, unavailable

NOBODY = 65534
# A few fast files: unit and MicroPython-unix-port levels, and files whose
# tests need root or a Debian tool (skipped here, named in the summary).
SUBSET = ["test_dhcp_unit.py", "test_checksum.py", "test_demo.py", "test_dhcp.py",
          "test_links.py", "test_e2e_kernel.py"]
SKIP_DIRS = {".git", ".venv", "node_modules", "build", "__pycache__", ".pytest_cache", ".hypothesis"}
LINUX_ONLY = ("netns", "tap", "packet_link", "forward")


def path_without_debian_tools(dest):
    """A folder of symlinks to every command on the usual PATH except those
    the Debian packages (and apt) provide."""
    os.makedirs(dest)
    skip = set(DEBIAN) | {"apt", "apt-get", "sudo"}
    for d in ("/usr/local/bin", "/usr/bin", "/bin", "/usr/local/sbin", "/usr/sbin", "/sbin"):
        try:
            names = os.listdir(d)
        except OSError:
            continue
        for name in names:
            link = os.path.join(dest, name)
            if name not in skip and not os.path.lexists(link):
                os.symlink(os.path.join(d, name), link)
    return dest


def user_checkout(dest, uid):
    """The working tree's files (tracked and new, not ignored) copied to dest,
    times kept (make's stamps stay fresh); .venv, node_modules and the stubs
    linked; owned by uid."""
    r = run(["git", "ls-files", "-co", "--exclude-standard", "-z"])
    files = r.stdout.split("\0") if r.returncode == 0 else [
        os.path.relpath(os.path.join(base, n), ROOT)            # not a git checkout (such a copy)
        for base, dirs, names in os.walk(ROOT)
        if not dirs.__setitem__(slice(None), [d for d in dirs if d not in SKIP_DIRS]) for n in names]
    for rel in filter(None, files):
        src = os.path.join(ROOT, rel)
        if os.path.isfile(src):
            os.makedirs(os.path.dirname(os.path.join(dest, rel)), exist_ok=True)
            shutil.copy2(src, os.path.join(dest, rel))
    for rel in (".venv", "node_modules"):
        os.symlink(os.path.join(ROOT, rel), os.path.join(dest, rel))
    os.makedirs(os.path.join(dest, "build"))
    os.symlink(os.path.join(ROOT, "build", "stubs"), os.path.join(dest, "build", "stubs"))
    for base, dirs, names in os.walk(dest):
        for n in dirs + names:
            os.lchown(os.path.join(base, n), uid, uid)
    os.chown(dest, uid, uid)
    return dest


@pytest.fixture(scope="module")
def user():
    """(run(cmd, ci=False) as an unprivileged user in its own checkout, PATH without Debian tools)."""
    if not sys.platform.startswith("linux"):
        unavailable("the unprivileged-user run is built for Linux (setpriv)")
    base = tempfile.mkdtemp(prefix="uipy-user-")
    try:
        os.chmod(base, 0o755)
        bindir = path_without_debian_tools(os.path.join(base, "bin"))
        home = os.path.join(base, "home")
        os.makedirs(home)
        if os.geteuid() == 0:
            # make test would bring these up to date; nobody cannot write them
            r = run(["make", "-s", ".venv/.stamp", "node_modules/.stamp", "build/stubs/.stamp"], timeout=600)
            assert r.returncode == 0, r.stdout + r.stderr
            checkout = user_checkout(os.path.join(base, "uipy"), NOBODY)
            os.chown(home, NOBODY, NOBODY)
            drop = [tool("setpriv"), "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups",
                    "--inh-caps=-all,+dac_read_search", "--ambient-caps=-all,+dac_read_search",
                    "--bounding-set=-all,+dac_read_search", "--no-new-privs"]
        else:
            checkout = user_checkout(os.path.join(base, "uipy"), os.geteuid())
            drop = []

        def as_user(cmd, ci=False, timeout=120):
            env = {"PATH": bindir, "HOME": home, "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1",
                   "HYPOTHESIS_STORAGE_DIRECTORY": os.path.join(home, "hypothesis"),
                   "UIPY_RUN_DIR": os.path.join(home, "run")}
            if ci:
                env["CI"] = "true"
            return subprocess.run(drop + cmd, cwd=checkout, env=env, capture_output=True, text=True,
                                  timeout=timeout)
        yield SimpleNamespace(run=as_user, checkout=checkout, root=bool(drop))
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_make_test_as_an_unprivileged_user_without_debian_tools(user):
    if user.root:
        who = user.run(["id", "-u"]).stdout.strip()
        assert who == str(NOBODY)
    assert user.run(["sh", "-c", "command -v ip || command -v dnsmasq || command -v tshark"]).returncode != 0
    tests = " ".join("host_tests/" + f for f in SUBSET)
    r = user.run(["make", "-s", "test", "TESTS=" + tests, "PY=env .venv/bin/python"], timeout=240)
    out = r.stdout + r.stderr
    # setup went on without root and without apt-get
    assert "warning: missing: ip ping" in out and "sudo make setup" in out
    summary = re.search(r"(\d+) passed, (\d+) skipped", out)
    assert r.returncode == 0 and summary, out[-4000:]
    passed, skipped = map(int, summary.groups())
    assert passed >= 30 and skipped >= 20, out[-3000:]
    lines = [l for l in out.splitlines() if l.startswith("SKIPPED ")]
    root = [l for l in lines if "needs root for network namespaces and TAP devices -> sudo make test" in l]
    assert len(root) == 1 and "in 4 files (test_demo.py, test_dhcp.py" in root[0], lines
    assert any("tshark not found" in l and "apt-get install tshark" in l for l in lines), lines
    n_root = int(root[0].split()[1])
    assert sum(int(l.split()[1]) for l in lines) == skipped and n_root < skipped
    assert "skipped levels (%d tests)" % skipped in out


def test_under_ci_a_level_that_cannot_run_fails(user):
    r = user.run(["make", "-s", "debs"], ci=True)
    assert r.returncode != 0 and "need root and apt-get" in r.stdout, r.stdout + r.stderr
    r = user.run(["env", ".venv/bin/python", "-m", "pytest", "-q", "-p", "no:cacheprovider",
                  "host_tests/test_dhcp.py"], ci=True)
    out = r.stdout + r.stderr
    assert r.returncode != 0 and "test level cannot run under CI" in out and " skipped" not in out, out[-3000:]


def test_collection_imports_nothing_linux_only(tmp_path):
    """As on macOS: netns, TAP, AF_PACKET/setns and the port forward must not be
    imported to collect the suite (they are imported inside the tests that
    need root)."""
    (tmp_path / "linux_blocker.py").write_text(
        "import sys\n"
        "class Blocker:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name in %r:\n"
        "            raise ImportError('Linux-only module %%s imported at collection' %% name)\n"
        "sys.meta_path.insert(0, Blocker())\n" % (LINUX_ONLY,))
    env = dict(os.environ, PYTHONPATH=str(tmp_path), UIPY_NO_SWEEP="1", PYTHONDONTWRITEBYTECODE="1")
    r = subprocess.run([sys.executable, "-m", "pytest", "host_tests", "--collect-only", "-q",
                        "-p", "no:cacheprovider", "-p", "linux_blocker"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and re.search(r"\d+ tests collected", r.stdout), r.stdout[-3000:] + r.stderr


def test_makefile_and_levels_agree_on_the_debian_packages():
    text = open(os.path.join(ROOT, "Makefile")).read()
    debs = re.search(r"^DEBS\s*:=(.*)$", text, re.M).group(1).split()
    cmds = re.search(r"^DEB_CMDS\s*:=(.*)$", text, re.M).group(1).split()
    assert dict(zip(cmds, debs)) == DEBIAN


def test_skip_summary_one_line_per_reason_with_its_command():
    import conftest
    import levels

    def rep(nodeid, reason):
        return SimpleNamespace(nodeid=nodeid, longrepr=("f.py", 1, "Skipped: " + reason))
    rows = conftest.skipped_levels([rep("host_tests/a.py::t1", levels.NEED_ROOT),
                                    rep("host_tests/b.py::t2", levels.NEED_ROOT),
                                    rep("host_tests/a.py::t3", levels.NEED_ROOT),
                                    rep("host_tests/c.py::t", "weird reason")])
    assert rows == [(levels.NEED_ROOT, 3, ["a.py", "b.py"], "sudo make test"),
                    ("weird reason", 1, ["c.py"], "make setup")]
    assert levels.enable_tool("dnsmasq") == "sudo make setup (apt-get install dnsmasq-base)"
    assert "npm ci" in levels.enable_tool("rp2040js", os.path.join(ROOT, "node_modules"))
