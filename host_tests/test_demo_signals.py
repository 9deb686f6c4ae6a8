"""make demo stopped by SIGINT, SIGTERM or SIGHUP at any moment (just after its
namespace appears, while waiting for the DHCP lease, while serving): nothing
it made is left: namespace, TAP, dnsmasq or any other process it started,
the localhost forward, its lock file.  Killed with SIGKILL it leaves the
namespace and dnsmasq; the next demo and `make clean-net` remove them, and
nothing whose name is not uipy's own.

Every process the demo starts inherits a token in its environment
(UIPY_TEST_TOKEN): a process still carrying it after the demo has exited is
one it left behind.
"""
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid

import pytest

from levels import ROOT, need_root, tool

PHASES = ("namespace", "dhcp", "serving")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def processes_with(token):
    """PIDs whose environment holds token."""
    found = []
    needle = ("UIPY_TEST_TOKEN=" + token).encode()
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open("/proc/%s/environ" % pid, "rb") as f:
                    if needle in f.read().split(b"\0"):
                        found.append(int(pid))
            except OSError:
                pass
    return found


def netns_names():
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10).stdout
    return [l.split()[0] for l in out.splitlines() if l.strip()]


def link_names():
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, timeout=10).stdout
    return [l.split(":")[1].strip().split("@")[0] for l in out.splitlines() if l.count(":") >= 2]


class Demo:
    """tools/demo.py (virtual board, serving until stopped) in its own session."""

    def __init__(self):
        self.token = uuid.uuid4().hex
        self.port = free_port()
        env = dict(os.environ, BOARD="virtual", DEMO_SECONDS="0", DEMO_PORT=str(self.port),
                   UIPY_TEST_TOKEN=self.token, PYTHONUNBUFFERED="1")
        env.pop("CHIP", None)
        self.proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "tools", "demo.py")], cwd=ROOT,
                                     env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True)
        short = self.proc.pid % 10000           # netns.unique_name: prefix, pid % 10000, counter
        self.ns = "uipyns%d0" % short
        self.tap = "uitap%d1" % short
        self.lines = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def out(self):
        return "".join(self.lines)

    def wait_line(self, text, timeout=30):
        deadline = time.monotonic() + timeout
        while not any(text in l for l in self.lines):
            assert self.proc.poll() is None, "demo exited waiting for %r:\n%s" % (text, self.out)
            assert time.monotonic() < deadline, "no %r within %d s:\n%s" % (text, timeout, self.out)
            time.sleep(0.01)

    def wait_namespace(self, timeout=20):
        deadline = time.monotonic() + timeout
        while self.ns not in netns_names():
            assert self.proc.poll() is None, self.out
            assert time.monotonic() < deadline, self.out
            time.sleep(0.005)

    def stop(self, sig, timeout=30):
        os.kill(self.proc.pid, sig)
        try:
            return self.proc.wait(timeout)
        finally:
            self.reader.join(5)

    def close(self):
        """Whatever happened: the demo and everything carrying its token, by PID."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        for pid in processes_with(self.token):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.ns in netns_names():
            subprocess.run(["ip", "netns", "del", self.ns], timeout=10)

    def assert_nothing_left(self):
        assert self.ns not in netns_names()
        assert self.tap not in link_names()
        assert processes_with(self.token) == []
        assert not os.path.exists("/run/uipy/%s.lock" % self.ns)
        with socket.socket() as s:                # the localhost forward is closed
            assert s.connect_ex(("127.0.0.1", self.port)) != 0


@pytest.fixture
def demo_tools():
    need_root()
    for t in ("ip", "ping", "curl", "dnsmasq"):
        tool(t)


@pytest.mark.parametrize("phase", PHASES)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_demo_cleans_up_on_signal(demo_tools, sig, phase):
    demo = Demo()
    try:
        if phase == "namespace":
            demo.wait_namespace()                 # start-up: TAP and dnsmasq on their way
        elif phase == "dhcp":
            demo.wait_line("with dnsmasq")        # dnsmasq up, the board waiting for its lease
            assert processes_with(demo.token)     # dnsmasq carries the token
        else:
            demo.wait_line("serving until Ctrl-C")
        code = demo.stop(sig)
        assert code in (0, 1), demo.out           # it returned, it was not killed by the signal
        assert "%s: stopping" % sig.name in demo.out, demo.out
        assert code == (0 if phase == "serving" else 1), demo.out
        demo.assert_nothing_left()
    finally:
        demo.close()


def test_sigkill_leftovers_are_removed_by_the_next_demo_and_by_clean_net(demo_tools, tmp_path):
    decoys = ["uipydecoy%d" % os.getpid(), "uipyns%dx" % os.getpid()]     # not uipy's form
    import netns
    lockless = netns.unique_name("uipyns")       # uipy's form, no lock: an older checkout's run
    first = Demo()
    second = None
    try:
        for name in decoys + [lockless]:
            subprocess.run(["ip", "netns", "add", name], check=True, timeout=10)
        first.wait_line("with dnsmasq")
        pids = processes_with(first.token)
        assert pids
        first.stop(signal.SIGKILL)
        left = [p for p in pids if p != first.proc.pid]
        assert left and first.ns in netns_names() and processes_with(first.token) == left   # left behind

        second = Demo()                           # the next run finds and removes it
        second.wait_line("with dnsmasq")
        assert "removed leftovers of a killed run: %s" % first.ns in second.out, second.out
        first.assert_nothing_left()
        second.stop(signal.SIGKILL)
        assert second.ns in netns_names()

        r = subprocess.run(["make", "-s", "clean-net"], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and second.ns in r.stdout, r.stdout + r.stderr
        second.assert_nothing_left()
        names = netns_names()
        assert all(n in names for n in decoys + [lockless]), names
        assert lockless not in r.stdout and all(n not in r.stdout for n in decoys)
    finally:
        for d in (first, second):
            if d is not None:
                d.close()
        for name in decoys + [lockless]:
            subprocess.run(["ip", "netns", "del", name], timeout=10)


def test_a_killed_test_runs_namespace_is_swept_with_what_runs_in_it(demo_tools):
    """What conftest's session start does: a namespace whose creator was
    SIGKILLed, a process still in it, goes; a live run's namespace stays."""
    import netns
    token = uuid.uuid4().hex
    script = ("import sys; sys.path.insert(0, %r); import paths, netns, time\n"
              "ns = netns.Namespace().create()\n"
              "ns.popen(['sleep', '60'])\n"
              "print(ns.name, flush=True)\n"
              "time.sleep(60)\n" % os.path.join(ROOT, "tools"))
    env = dict(os.environ, UIPY_TEST_TOKEN=token)
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    live = netns.Namespace().create()            # ours, alive: must stay
    name = None
    try:
        name = proc.stdout.readline().strip()
        assert name.startswith("uipyns") and name in netns_names()
        assert name in [n for n in netns.namespaces() if n not in netns.leftovers()]   # held: not a leftover
        proc.kill()
        proc.wait(10)
        assert len(processes_with(token)) == 1    # the sleep, in the namespace
        assert name in netns.leftovers()
        removed = netns.clean_leftovers()
        assert name in removed and live.name not in removed
        assert name not in netns_names() and live.name in netns_names()
        assert processes_with(token) == [] and not os.path.exists("/run/uipy/%s.lock" % name)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        for pid in processes_with(token):
            os.kill(pid, signal.SIGKILL)
        if name and name in netns_names():
            subprocess.run(["ip", "netns", "del", name], timeout=10)
        live.delete()


@pytest.mark.parametrize("how", ["SIGTERM to make", "SIGHUP to the process group"])
def test_make_demo_stopped_through_make(demo_tools, how):
    """`kill <make's pid>` (make does not pass SIGTERM on: the demo notices its
    parent's end) and a closing terminal's SIGHUP to the whole group."""
    token = uuid.uuid4().hex
    env = dict(os.environ, BOARD="virtual", DEMO_SECONDS="0", DEMO_PORT="0", UIPY_TEST_TOKEN=token)
    env.pop("CHIP", None)
    make = subprocess.Popen(["make", "-s", "demo"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    ns = None
    try:
        lines = []
        for line in make.stdout:                  # bounded by the demo's own start-up timeouts
            lines.append(line)
            if "with dnsmasq" in line:
                ns = line.split("namespace ", 1)[1].split(":")[0]
                break
        assert ns and ns in netns_names(), "".join(lines)
        assert len(processes_with(token)) >= 2    # the demo and dnsmasq
        if how.startswith("SIGTERM"):
            os.kill(make.pid, signal.SIGTERM)
        else:
            os.killpg(make.pid, signal.SIGHUP)
        make.wait(30)
        rest = make.stdout.read()
        deadline = time.monotonic() + 20
        while processes_with(token) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert processes_with(token) == [], "".join(lines) + rest
        assert ns not in netns_names() and not os.path.exists("/run/uipy/%s.lock" % ns)
    finally:
        if make.poll() is None:
            make.kill()
            make.wait(10)
        for pid in processes_with(token):
            os.kill(pid, signal.SIGKILL)
        if ns and ns in netns_names():
            subprocess.run(["ip", "netns", "del", ns], timeout=10)
