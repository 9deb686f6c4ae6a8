"""Run under the MicroPython unix port: drivers/unix_dgram.py keeps datagram
boundaries (three frames waiting are three frames, not one joined read), says
0 when nothing waits, sends, and counts a frame to a vanished peer as lost.
Usage: micropython unix_dgram_check.py <repo root> <scratch dir>"""
import sys

root, tmp = sys.argv[1], sys.argv[2]
sys.path.insert(0, root + "/drivers")
sys.path.insert(0, root + "/lib")

import os
import socket
import struct

from unix_dgram import UnixDgramNic, unix_addr

peer_path = tmp + "/peer.sock"
peer = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
peer.bind(struct.pack("H", socket.AF_UNIX) + peer_path.encode() + b"\0")
nic = UnixDgramNic(tmp + "/nic.sock", peer_path)
assert unix_addr(peer_path) == struct.pack("H", socket.AF_UNIX) + peer_path.encode() + b"\0"
buf = bytearray(1600)
mv = memoryview(buf)
assert nic.recv_into(mv) == 0
assert not nic.wait(0.01)
frames = [bytes([i]) * (60 + 500 * i) for i in range(3)]
for f in frames:
    peer.sendto(f, unix_addr(nic.path))
assert nic.wait(1.0)
for f in frames:
    n = nic.recv_into(mv)
    assert n == len(f), (n, len(f))
    assert bytes(mv[:n]) == f
assert nic.recv_into(mv) == 0
buf[:5] = b"hello"
assert nic.send(mv, 5)
assert peer.recv(100) == b"hello"
peer.close()
os.remove(peer_path)
assert nic.send(mv, 5) is False and nic.tx_lost == 1
nic.close()
print("OK")
