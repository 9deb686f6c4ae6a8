"""mosquitto as the MQTT broker of a test namespace (host only).

    broker = Broker(ns, workdir, certs=certs)   # certs: host_tests/tls_certs.Certs or None
    broker.start()          # returns once the broker says it is running
    broker.restart()        # stop by PID, start again (no persistence: a fresh broker)
    broker.stop()

Nothing is read from /etc and the system service is not used: the
configuration, log and nothing else live in workdir.  Listeners: PORT plain
and, with certs, TLS_PORT with the test server certificate; anonymous clients
allowed, no persistence.  Started as root, mosquitto would switch to the
"mosquitto" user and could not read the keys in workdir: `user root` keeps it.

Clients for the far side (package mosquitto-clients): mosquitto_sub / mosquitto_pub
run with ns.run / ns.popen, e.g. sub_args(ns_ip, "t/x", count=1).
"""
import os
import signal
import subprocess
import time

PORT = 1883
TLS_PORT = 8883


class Broker:
    def __init__(self, ns, workdir, certs=None, port=PORT, tls_port=TLS_PORT, exe="mosquitto",
                 bind=None):
        self.ns = ns
        self.workdir = str(workdir)
        self.certs = certs
        self.port = port
        self.tls_port = tls_port
        self.exe = exe
        self.bind = bind                    # listen on this address only (default: all in ns)
        self.proc = None
        self.conf = os.path.join(self.workdir, "mosquitto.conf")
        self.log_path = os.path.join(self.workdir, "mosquitto.log")

    def write_config(self):
        lines = ["user root", "per_listener_settings false", "allow_anonymous true",
                 "persistence false", "log_dest file " + self.log_path,
                 "log_type error", "log_type warning", "log_type notice", "log_type information",
                 "connection_messages true", "log_timestamp true", ""]
        lines.append("listener %d%s" % (self.port, " " + self.bind if self.bind else ""))
        if self.certs is not None:
            lines += ["", "listener %d%s" % (self.tls_port, " " + self.bind if self.bind else ""),
                      "cafile " + self.certs.ca_pem,
                      "certfile " + self.certs.server_cert,
                      "keyfile " + self.certs.server_key]
        os.makedirs(self.workdir, exist_ok=True)
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def read_log(self):
        try:
            with open(self.log_path) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def start(self, timeout_s=5.0):
        """Start in the namespace (tracked by it); return once the log says running."""
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("mosquitto already running (pid %d)" % self.proc.pid)
        self.write_config()
        mark = len(self.read_log())
        self.proc = self.ns.popen([self.exe, "-c", self.conf],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout_s
        while True:
            log = self.read_log()[mark:]
            if " running" in log and "mosquitto version" in log:
                return self.proc
            if self.proc.poll() is not None:
                raise RuntimeError("mosquitto exited (%d): %s %s" % (
                    self.proc.returncode, self.proc.stderr.read().decode(errors="replace"), log))
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("mosquitto did not start within %g s: %s" % (timeout_s, log))
            time.sleep(0.02)

    def stop(self, timeout_s=3.0):
        """SIGTERM by PID (SIGKILL if it lingers); the namespace forgets the process."""
        p, self.proc = self.proc, None
        if p is None:
            return
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout_s)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout_s)
        if p.stderr:
            p.stderr.close()
        if p in self.ns.procs:
            self.ns.procs.remove(p)

    def restart(self, down_s=0.0):
        self.stop()
        if down_s:
            time.sleep(down_s)
        return self.start()

    def running(self):
        return self.proc is not None and self.proc.poll() is None


def sub_args(host, topic, count=1, wait_s=10, port=PORT, exe="mosquitto_sub", qos=0):
    """mosquitto_sub that prints count messages ("topic payload") then exits,
    or gives up after wait_s seconds."""
    return [exe, "-h", host, "-p", str(port), "-t", topic, "-C", str(count), "-W", str(wait_s),
            "-v", "-q", str(qos)]


def pub_args(host, topic, message, port=PORT, exe="mosquitto_pub", qos=0, retain=False):
    args = [exe, "-h", host, "-p", str(port), "-t", topic, "-m", message, "-q", str(qos)]
    return args + (["-r"] if retain else [])
