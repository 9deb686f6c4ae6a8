"""Run under the MicroPython unix port: the golden-frame replay must pass.
Usage: micropython -X heapsize=64K host_tests/mpy/golden_check.py <repo root> [module dir]
The module dir holds the stack precompiled with mpy-cross, as on a board
(compiling the sources needs more heap than running them); default <root>/lib."""
import sys

root = sys.argv[1] if len(sys.argv) > 1 else "."
sys.path.insert(0, root + "/host_tests")
sys.path.insert(0, sys.argv[2] if len(sys.argv) > 2 else root + "/lib")

import gc
import golden_replay

count, failures = golden_replay.replay(root + "/host_tests/golden_frames.bin")
for f in failures:
    print("FAIL", f)
gc.collect()
print("checksum:", "loop" if "uipy.portable" in sys.modules else "viper")   # a viper port never loads portable
print("cases:", count, "failures:", len(failures), "heap free:", gc.mem_free())
if failures:
    sys.exit(1)
print("OK")
