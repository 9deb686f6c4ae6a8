"""Heap held by the stack, the HTTP server and a 4-connection table on a 32-bit
MicroPython (run with tools/emu/mpy_wasm.mjs): module code, then objects."""
import gc

gc.collect()
start = gc.mem_alloc()
from uipy.stack import Stack
from uipy.httpd import HttpServer
import uipy.tcp
gc.collect()
code = gc.mem_alloc() - start


class NullNic:
    mac = b"\x02\x00\x00\x00\x00\x01"

    def recv_into(self, mv):
        return 0

    def send(self, mv, n):
        return True

    def link_up(self):
        return True


gc.collect()
start = gc.mem_alloc()
stack = Stack(NullNic(), ip="198.18.0.2", tcp={"conns": 4, "listeners": 2})
http = HttpServer(stack, root="www", max_conns=4)
gc.collect()
objects = gc.mem_alloc() - start
print("heap_code_bytes", code)
print("heap_objects_bytes", objects)
print("heap_bytes_stack_httpd_4conn", code + objects)
