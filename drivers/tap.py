"""Linux TAP device as a uipy NIC (host only, CPython).

The stack sits on the user-space side of the TAP: frames the kernel sends out of
the tap interface are read here, frames written here arrive at the kernel as if
received on the wire. `mac` is the stack's own address, not the tap interface's.
"""
import errno
import fcntl
import os
import select
import struct

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000  # no 4-byte packet-info header: plain Ethernet frames


def random_mac():
    """A random locally administered unicast MAC."""
    b = bytearray(os.urandom(6))
    b[0] = (b[0] & 0xFC) | 0x02
    return bytes(b)


class TapNic:
    def __init__(self, name, mac=None):
        if len(name.encode()) > 15:
            raise ValueError("interface name longer than 15 bytes: %r" % name)
        self.name = name
        self.mac = bytes(mac) if mac is not None else random_mac()
        self.fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            ifr = struct.pack("16sH22x", name.encode(), IFF_TAP | IFF_NO_PI)
            fcntl.ioctl(self.fd, TUNSETIFF, ifr)
        except OSError:
            os.close(self.fd)
            self.fd = -1
            raise
        self.tx_errors = 0

    def recv_into(self, mv):
        try:
            return os.readv(self.fd, [mv])
        except BlockingIOError:
            return 0

    def send(self, mv, n):
        try:
            os.write(self.fd, mv[:n])
            return True
        except (BlockingIOError, OSError) as e:
            # EIO while the kernel side is down, ENOBUFS/EAGAIN under pressure:
            # a lost frame, like on a wire.
            if isinstance(e, BlockingIOError) or e.errno in (errno.EIO, errno.ENOBUFS):
                self.tx_errors += 1
                return False
            raise

    def link_up(self):
        return True

    def fileno(self):
        return self.fd

    def wait(self, timeout):
        """Block up to timeout seconds until a frame is readable; True if one is."""
        r, _, _ = select.select([self.fd], [], [], timeout)
        return bool(r)

    def close(self):
        # Closing the last fd of a non-persistent TAP deletes the interface,
        # whichever namespace it has been moved to.
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
