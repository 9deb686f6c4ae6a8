"""uipy firmware: bring up Ethernet, get an address, serve the web page.

On a board, MicroPython runs this file at boot.  It reads config.json (board
name, DHCP or a static address, hostname), builds the NIC through boards/,
runs DHCP, serves www/ over HTTP, answers <hostname>.local over mDNS and logs
link, lease and URL on the console.  The virtual board (tools/demo.py) runs the
very same file on the host with an emulated chip on a TAP device.
"""
import sys
import time

from uipy.compat import ticks_ms, ticks_diff

# device_setup.py, beside this file, holds the code that runs once at start
# (on a board both are at the root of the filesystem, already on sys.path)
_here = globals().get("__file__", "").rpartition("/")[0]
if _here and _here not in sys.path:
    sys.path.append(_here)

RETRY_MAX_S = 30               # longest wait between tries to bring the NIC up

# The ARP check of a leased address before it is used: two probes 200 ms
# apart and 300 ms of listening (about 0.6 s), not RFC 5227's three probes
# over about 5 s, so the board is up fast; a host that holds the address
# answers within milliseconds on a wired LAN.  {} for the RFC 5227 timing.
DHCP_PROBE = {"probe_num": 2, "probe_wait_ms": 100, "probe_min_ms": 200, "probe_max_ms": 200,
              "announce_wait_ms": 300}


class ConfigError(ValueError):
    pass


def load_config(path="config.json", overrides=None):
    """device_setup.DEFAULTS, then the JSON file when present, then overrides;
    checked (ConfigError says what is wrong and what is allowed)."""
    import device_setup           # forgotten once the Device is up
    return device_setup.load_config(path, overrides, ConfigError)


def forget(package):
    """Drop package and its modules from sys.modules: code only needed once
    becomes garbage (on a stock board code is heap); a later import loads it again."""
    for name in list(sys.modules):
        if name == package or name.startswith(package + "."):
            del sys.modules[name]


def log(msg):
    print("[%8.3f] %s" % (ticks_ms() / 1000, msg))


class Device:
    """The running firmware: stack, DHCP, HTTP server, mDNS, and the console log."""

    def __init__(self, cfg, nic=None, clock=None):
        self.cfg = cfg
        self.link = None              # the link state last logged
        self.url_logged = None        # the address whose URL was logged
        try:
            import device_setup       # the code that runs once, forgotten after (with boards/)
            # the NIC, stack, DHCP client (None: a static address), HTTP server, mDNS responder
            self.nic, self.stack, self.dhcp, self.http, self.mdns, line = device_setup.start(
                self, nic, clock, DHCP_PROBE)
        finally:
            forget("device_setup")
            forget("boards")
        log(line)

    def _status(self):
        return {"board": self.cfg["board"], "dhcp": self.dhcp.state if self.dhcp else "static"}

    def _lease_changed(self, dhcp, event):
        lease = dhcp.lease()
        if event == "lost" or lease is None:
            log("lease lost (%s)" % dhcp.state)
        else:
            log("lease %s: %s from %s for %d s" % (event, lease["address"], lease["server"], lease["lease_s"]))

    def address(self):
        ip = self.stack.ip
        return "%d.%d.%d.%d" % (ip[0], ip[1], ip[2], ip[3])

    def check(self):
        """Log link changes and the URL once the address is known."""
        up = self.nic.link_up()
        if up != self.link:
            self.link = up
            log("link %s" % ("up" if up else "down"))
            if up and self.dhcp and self.dhcp.state == "STOPPED":
                self.dhcp.start()             # later link changes are the client's own business
        if self.stack.configured and self.url_logged != self.stack.ip:
            self.url_logged = self.stack.ip
            port = self.cfg["http_port"]
            suffix = "" if port == 80 else ":%d" % port
            log("serving http://%s%s/ and http://%s.local%s/" % (self.address(), suffix,
                                                                 self.cfg["hostname"], suffix))

    def run(self, stop=None):
        """The main loop: poll; when idle, wait on the NIC (host) or sleep 1 ms."""
        wait = getattr(self.nic, "wait", None)
        flush = getattr(self.nic, "flush", None)   # a frame still going out by DMA
        sleep_ms = getattr(time, "sleep_ms", None)
        checked = self.stack.now
        while stop is None or not stop():
            if not self.stack.poll():
                if flush is not None:
                    flush()
                if wait is not None:
                    wait(0.002)
                elif sleep_ms is not None:
                    sleep_ms(1)
            if ticks_diff(self.stack.now, checked) >= 100:
                checked = self.stack.now
                self.check()


def start(cfg, sleep=time.sleep, tries=None):
    """Device(cfg), retried while the NIC fails to come up (a chip that does not
    answer: loose wire, held in reset, no power): the error is logged and the
    next try waits 1, 2, 4 ... s, at most RETRY_MAX_S.  None after tries failures."""
    delay = 1
    while tries is None or tries > 0:
        try:
            return Device(cfg)
        except OSError as e:
            log("network chip not ready: %s; retrying in %d s" % (e, delay))
        sleep(delay)
        delay = delay * 2 if delay * 2 < RETRY_MAX_S else RETRY_MAX_S
        if tries is not None:
            tries -= 1
    return None


def main(config_path="config.json"):
    try:
        cfg = load_config(config_path)
    except ConfigError as e:
        print(e)
        return
    device = start(cfg)
    if device is not None:
        device.check()
        device.run()


if __name__ == "__main__":
    main()
