"""Level 5 test bed: uipy inside the MicroPython unix port, its frames on a TAP
in a test namespace (needs root).

The unix port cannot open a TAP, so a CPython relay (tools/net/unix_relay.py)
holds the TAP and passes whole frames to and from the MicroPython process over
AF_UNIX datagram sockets; the process runs drivers/unix_dgram.py on its end
(host_tests/mpy/mpnet.py builds the NIC and a Stack from the environment set
here).  The MicroPython process itself runs inside the namespace, so even its
own built-in sockets reach nothing else.

    net = MpyNet(tmp_path)                      # namespace, TAP (198.18.0.1/24), relay
    net.start("host_tests/mpy/net_echo.py", heap="1M")
    net.wait_for("READY", 10)                   # a line the script prints
    net.ns.run(["curl", ...])
    net.close()                                 # process by PID, relay, namespace

MICROPYPATH: the script's own folder, ".frozen" (MICROPYPATH replaces the
unix port's whole path, and asyncio and ssl are frozen modules), lib/,
drivers/, host_tests/mpy/ and a folder with the pure-Python third-party
packages (microdot, urequests, aiomqttc) copied from the venv, unmodified.
"""
import os
import shutil
import subprocess
import threading
import time

from levels import ROOT, VENV_BIN, tool

KERNEL_IP = "198.18.0.1"
STACK_IP = "198.18.0.2"

# distribution -> what of it MicroPython imports (a package folder or one module);
# aiomqttc's wheel also puts main.py, config.py and wifi.py at the top level,
# which must not shadow a script's own: only aiomqttc.py is copied.
THIRD_PARTY = {"microdot": "microdot", "urequests": "urequests", "aiomqttc": "aiomqttc.py"}


def third_party_dir(dest):
    """Copy the MicroPython-importable files of the pinned packages (installed
    in the venv from requirements.txt) into dest; return dest."""
    from importlib import metadata
    os.makedirs(dest, exist_ok=True)
    for dist, top in THIRD_PARTY.items():
        try:
            d = metadata.distribution(dist)
        except metadata.PackageNotFoundError:
            from levels import unavailable
            unavailable("%s is not installed (make setup installs requirements.txt)" % dist)
        src = os.path.join(str(d.locate_file("")), top)
        if os.path.isdir(src):
            shutil.copytree(src, os.path.join(dest, top), dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyi", "py.typed"))
        else:
            shutil.copy(src, dest)
    return dest


class MpyNet:
    def __init__(self, tmpdir, kernel_ip=KERNEL_IP + "/24"):
        from netns import Namespace, create_tap_in_ns
        from unix_relay import UnixRelay

        self.mp = tool("micropython", VENV_BIN)
        self.dir = str(tmpdir)
        self.nic_path = os.path.join(self.dir, "mpy.sock")
        self.relay_path = os.path.join(self.dir, "relay.sock")
        self.proc = None
        self.relay = None
        self.lines = []
        self._cond = threading.Condition()
        self._readers = []
        self.ns = Namespace().create()
        try:
            self.tap = create_tap_in_ns(self.ns, kernel_ip)
            self.relay = UnixRelay(self.tap, self.relay_path, self.nic_path).start()
            self.pkgs = third_party_dir(os.path.join(self.dir, "pkgs"))
        except BaseException:
            self.close()
            raise

    # --- the MicroPython process ---
    def micropypath(self, script):
        dirs = [os.path.dirname(os.path.abspath(script)), ".frozen", os.path.join(ROOT, "lib"),
                os.path.join(ROOT, "drivers"), os.path.join(ROOT, "host_tests", "mpy"), self.pkgs]
        return ":".join(dirs)

    def start(self, script, *args, heap="2M", env=None):
        """Run script (a path; relative to the repository) under the MicroPython
        unix port inside the namespace; its output lines are collected."""
        assert self.proc is None
        script = os.path.join(ROOT, script)
        e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.dir,
             "MICROPYPATH": self.micropypath(script),
             "UIPY_NIC": self.nic_path, "UIPY_RELAY": self.relay_path}
        e.update(env or {})
        self.proc = self.ns.popen([self.mp, "-X", "heapsize=" + heap, script] + list(args),
                                  env=e, stdin=subprocess.DEVNULL, cwd=self.dir)
        for name, f in (("out", self.proc.stdout), ("err", self.proc.stderr)):
            t = threading.Thread(target=self._read, args=(name, f), daemon=True)
            t.start()
            self._readers.append(t)
        return self.proc

    def _read(self, name, f):
        try:
            for raw in iter(f.readline, b""):
                with self._cond:
                    self.lines.append((name, raw.decode(errors="replace").rstrip("\n")))
                    self._cond.notify_all()
        except (OSError, ValueError):
            pass                                 # the pipe was closed by close()
        with self._cond:
            self._cond.notify_all()

    def output(self):
        with self._cond:
            return "\n".join(("" if n == "out" else "[stderr] ") + l for n, l in self.lines)

    def wait_for(self, marker, timeout_s):
        """The first stdout line that starts with marker; fails (with the
        process's output) if the process ends or timeout_s passes first."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                for name, line in self.lines:
                    if name == "out" and line.startswith(marker):
                        return line
                left = deadline - time.monotonic()
                exited = self.proc.poll() is not None and not any(t.is_alive() for t in self._readers)
                if exited or left <= 0:
                    raise AssertionError("%s waiting for %r (exit code %s); output:\n%s" % (
                        "process ended" if exited else "timed out", marker, self.proc.poll(),
                        "\n".join(l for _, l in self.lines)))
                self._cond.wait(min(left, 0.2))

    def wait_exit(self, timeout_s):
        """The process's exit code once it ends (fails after timeout_s)."""
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            raise AssertionError("MicroPython still running after %g s; output:\n%s"
                                 % (timeout_s, self.output()))

    # --- kernel side ---
    def curl(self, url, *opts, timeout_s=10):
        """curl inside the namespace: (returncode, body as bytes, stderr text)."""
        out = os.path.join(self.dir, "curl.out")
        if os.path.exists(out):
            os.unlink(out)
        r = self.ns.run([tool("curl"), "-sS", "--max-time", timeout_s, "-o", out] + list(opts) + [url],
                        check=False, timeout=timeout_s + 5)
        body = b""
        if os.path.exists(out):
            with open(out, "rb") as f:
                body = f.read()
        return r.returncode, body, r.stderr

    def close(self):
        """The process (by PID, through the namespace), the relay, the namespace."""
        try:
            if self.relay is not None:
                relay, self.relay = self.relay, None
                relay.stop()
        finally:
            self.ns.delete()                     # stops self.proc and closes its pipes
            for t in self._readers:
                t.join(2)
