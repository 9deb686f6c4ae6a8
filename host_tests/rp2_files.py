"""The files a real-firmware run puts on the emulated board's filesystem: what
`make deploy` copies for the board, plus the portable test helpers and the
board-side probes, compiled with mpy-cross for armv6m like the stack."""
import os
import subprocess

import fsimage
import mpy_build

ROOT = mpy_build.ROOT
HELPERS = ("host_tests/golden_replay.py", "host_tests/mpy_pair.py", "host_tests/rp2/rp2_probe.py")
SCRIPTS = ("host_tests/mpy/alloc_check.py", "host_tests/mpy/tcp_alloc_check.py")
GOLDEN = "/golden_frames.bin"


def compile_armv6m(src):
    """The .mpy bytes of src (repository path) for the RP2040."""
    out = os.path.join(ROOT, "build", "rp2_helpers", os.path.basename(src)[:-3] + ".mpy")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    subprocess.run([mpy_build.mpy_cross_path(), "-march=armv6m", "-o", out, os.path.join(ROOT, src)],
                   check=True, capture_output=True)
    with open(out, "rb") as f:
        return f.read()


def board_files(board, with_main=False, config=None, extra=None):
    """{device path: bytes}: the deployed board, the helpers in /lib, the golden
    frames, and extra (more files, e.g. a big download for www/)."""
    files = fsimage.deploy_files(board, with_main=with_main, config=config)
    for src in HELPERS:
        files["/lib/" + os.path.basename(src)[:-3] + ".mpy"] = compile_armv6m(src)
    with open(os.path.join(ROOT, "host_tests", "golden_frames.bin"), "rb") as f:
        files[GOLDEN] = f.read()
    files.update(extra or {})
    return files


def script(src, **globals_):
    """The source of a host_tests script, with globals set first (e.g. GOLDEN)."""
    with open(os.path.join(ROOT, src)) as f:
        body = f.read()
    return "".join("%s = %r\n" % kv for kv in globals_.items()) + body


def figures(output):
    """{name: number} from lines "name value" of a probe's output."""
    out = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = float(parts[1])
            except ValueError:
                pass
    return out
