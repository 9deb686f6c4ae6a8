"""An interface object in the style of MicroPython's network module, so board
code reads like any other MicroPython network bring-up:

    from uipy.network import LAN
    lan = LAN(nic)                     # nic from boards.nic(...) or a driver
    lan.active(True)                   # DHCP unless ipconfig(dhcp4=False) / ifconfig(...)
    while not lan.isconnected():
        lan.poll()
    print(lan.ifconfig())
    import socket                      # with uipy.socket installed (see README)

The LAN owns a Stack and makes it the one uipy.socket uses.
"""
from uipy.stack import Stack
from uipy.ipv4 import ip_bytes, ip_str
import uipy.socket as _socket

STAT_IDLE = 0                          # not active
STAT_NO_LINK = 1                       # active, cable out
STAT_CONNECTING = 2                    # link up, no address yet (DHCP)
STAT_GOT_IP = 3


class LAN:
    def __init__(self, nic, hostname="uipy", **stack_options):
        self.stack = Stack(nic, **stack_options)
        self.stack.hostname = hostname
        self._dhcp4 = True
        self._dhcp = None
        self._active = False
        _socket.use(self.stack)

    def active(self, on=None):
        if on is None:
            return self._active
        if on and not self._active:
            self._active = True
            if self._dhcp4 and not self.stack.configured:
                self._start_dhcp()
        elif not on and self._active:
            self._active = False
            if self._dhcp is not None:
                self._dhcp.stop()

    def _start_dhcp(self):
        if self._dhcp is None:
            from uipy.dhcp import Dhcp
            # two ARP probes in about 0.6 s before the address is used (as
            # firmware/main.py; RFC 5227's full check takes 5 s)
            self._dhcp = Dhcp(self.stack, hostname=self.stack.hostname, probe_num=2, probe_wait_ms=100,
                              probe_min_ms=200, probe_max_ms=200, announce_wait_ms=300)
        self._dhcp.start()

    def poll(self):
        """Run the stack once (blocking socket calls and the asyncio pump do this too)."""
        return self.stack.poll()

    def isconnected(self):
        return self._active and self.stack.configured and self.stack.link_up()

    def status(self, param=None):
        if param is not None:
            raise ValueError("uipy: unknown status parameter %r" % (param,))
        if not self._active:
            return STAT_IDLE
        if not self.stack.link_up():
            return STAT_NO_LINK
        return STAT_GOT_IP if self.stack.configured else STAT_CONNECTING

    def config(self, *args, **kw):
        """config('mac') / config('hostname'); config(hostname=...) sets it."""
        for key in kw:
            if key != "hostname":
                raise ValueError("uipy: cannot set %r" % key)
            self.stack.hostname = kw[key]
        if args:
            if args[0] == "mac":
                return self.stack.mac
            if args[0] == "hostname":
                return self.stack.hostname
            raise ValueError("uipy: unknown config parameter %r" % (args[0],))

    def ifconfig(self, cfg=None):
        """(ip, netmask, gateway, dns) as strings; ifconfig((...)) sets a static address."""
        s = self.stack
        if cfg is None:
            return self._current()
        ip, mask, gw, dns = cfg
        self.ipconfig(dhcp4=False)
        s.set_address(ip, mask, gw)
        s.dns_servers = [ip_bytes(dns, "DNS server")]

    def _current(self):
        s = self.stack
        mask = bytes((s.mask_hi >> 8, s.mask_hi & 0xFF, s.mask_lo >> 8, s.mask_lo & 0xFF))
        gw = bytes((s.gw_hi >> 8, s.gw_hi & 0xFF, s.gw_lo >> 8, s.gw_lo & 0xFF))
        dns = s.dns_servers[0] if s.dns_servers else b"\x00\x00\x00\x00"
        return ip_str(s.ip), ip_str(mask), ip_str(gw), ip_str(dns)

    def ipconfig(self, *args, **kw):
        """ipconfig('addr4') -> (ip, netmask); 'gw4', 'dhcp4'; set with
        ipconfig(dhcp4=True) or ipconfig(addr4='198.18.0.2/24', gw4='198.18.0.1')."""
        s = self.stack
        if "dhcp4" in kw:
            self._dhcp4 = bool(kw["dhcp4"])
            if self._dhcp4 and self._active:
                self._start_dhcp()
            elif not self._dhcp4 and self._dhcp is not None:
                self._dhcp.stop()
        if "addr4" in kw:
            addr = kw["addr4"]
            if isinstance(addr, str):
                ip, _, bits = addr.partition("/")
                n = int(bits or 24)
                m = (0xFFFFFFFF << (32 - n)) & 0xFFFFFFFF
                mask = "%d.%d.%d.%d" % (m >> 24, (m >> 16) & 0xFF, (m >> 8) & 0xFF, m & 0xFF)
            else:
                ip, mask = addr
            gw = kw.get("gw4")
            s.set_address(ip, mask, gw)
        for key in kw:
            if key not in ("dhcp4", "addr4", "gw4"):
                raise ValueError("uipy: unknown ipconfig parameter %r" % key)
        if args:
            cur = self._current()
            if args[0] == "addr4":
                return cur[0], cur[1]
            if args[0] == "gw4":
                return cur[2]
            if args[0] == "dhcp4":
                return self._dhcp4
            raise ValueError("uipy: unknown ipconfig parameter %r" % (args[0],))
