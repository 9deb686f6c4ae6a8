"""Heap held by the stack, the minimal HTTP server and a 4-connection table on
a 32-bit MicroPython (run with tools/mpy_wasm.mjs): module code, then objects."""
import gc

gc.collect()
start = gc.mem_alloc()
from uipy.stack import Stack
from uipy.httpd_min import MinimalHttp
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
http = MinimalHttp(stack, 80)
gc.collect()
objects = gc.mem_alloc() - start
print("heap_code_bytes", code)
print("heap_objects_bytes", objects)
print("heap_bytes_stack_httpd_4conn", code + objects)
