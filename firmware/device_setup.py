"""firmware/main.py's one-time code: config.json read and checked, the device
brought up.  main.py imports this module for each call and forgets it after,
so its code is in RAM only while the board starts (on a stock board code is
heap); the running device keeps only main.py's Device loop."""
import json

DEFAULTS = {
    "board": "w5500_evb_pico",
    "hostname": "uipy",
    "dhcp": True,
    "ip": None,
    "netmask": "255.255.255.0",
    "gateway": None,
    "dns": None,
    "www": "www",
    "http_port": 80,
    "max_http_conns": 4,
    # The receive window the board advertises, bytes.  Two segments: what a web
    # server receives is requests, and the TCP reorder store is sized by it
    # (window / MSS - 1 segments held after a loss: 1.5 KB here, 4.4 KB at the
    # stack's default of 5840).  Sending does not depend on it; raise it for
    # uploads to the board.
    "tcp_window": 2920,
}


def load_config(path, overrides, error):
    """DEFAULTS, then the JSON file when present, then overrides; checked
    (error: the exception class to raise, main.ConfigError)."""
    cfg = dict(DEFAULTS)
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        text = None
    if text is not None:
        try:
            data = json.loads(text)
        except ValueError as e:
            raise error("uipy: %s is not valid JSON (%s)" % (path, e))
        if not isinstance(data, dict):
            raise error("uipy: %s must hold a JSON object" % path)
        for key in data:
            if key not in DEFAULTS and key != "board_options":
                raise error("uipy: unknown key %r in %s (known: %s)"
                            % (key, path, ", ".join(sorted(DEFAULTS))))
        cfg.update(data)
    if overrides:
        cfg.update(overrides)
    if not cfg["dhcp"] and not cfg["ip"]:
        raise error("uipy: dhcp is off in %s but no static ip is given" % path)
    name = cfg["hostname"]
    if not isinstance(name, str) or not name or len(name) > 63 or \
            not all(c.isalpha() or c.isdigit() or c == "-" for c in name):
        raise error("uipy: hostname %r must be 1-63 letters, digits or '-'" % (name,))
    return cfg


def start(dev, nic, clock, dhcp_probe):
    """Device(cfg, nic, clock): the NIC (built through boards/ unless given),
    the stack, DHCP or the static address, the HTTP server and mDNS.  Returns
    (nic, stack, dhcp or None, http, mdns, the line to log)."""
    from uipy.stack import Stack
    cfg = dev.cfg
    if nic is None:
        import boards               # main.py forgets it after: the wiring code runs once
        opts = {"tx_dma": True}     # frames leave by DMA on an RP2040 (main.py's loop flushes)
        opts.update(cfg.get("board_options", {}))
        nic = boards.nic(cfg["board"], **opts)
    stack = Stack(nic, clock=clock, tcp={"conns": cfg["max_http_conns"] + 2, "window": cfg["tcp_window"]})
    stack.hostname = cfg["hostname"]
    dhcp = None
    if cfg["dhcp"]:
        from uipy.dhcp import Dhcp
        dhcp = Dhcp(stack, hostname=cfg["hostname"], on_change=dev._lease_changed, **dhcp_probe)
    else:
        stack.set_address(cfg["ip"], cfg["netmask"], cfg["gateway"])
    if cfg["dns"]:
        from uipy.ipv4 import ip_bytes
        stack.dns_servers = [ip_bytes(cfg["dns"], "DNS server")]
    from uipy.httpd import HttpServer
    # a large file goes out of 2 x 5840 B buffers (made per response): four
    # segments sent in a row per refill, each built while DMA sends the one
    # before (2 x 2920 B: 484 kB/s, 5840: 525 on the W5500 board)
    http = HttpServer(stack, root=cfg["www"], port=cfg["http_port"], max_conns=cfg["max_http_conns"],
                      status=dev._status, name=cfg["hostname"], chunk=5840)
    from uipy.mdns import Mdns
    mdns = Mdns(stack, cfg["hostname"])
    line = "uipy on %s, MAC %s" % (cfg["board"], ":".join("%02x" % b for b in stack.mac))
    return nic, stack, dhcp, http, mdns, line
