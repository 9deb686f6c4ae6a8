"""The board's filesystem as a littlefs image (host only): what `make deploy`
copies (tools/device/deploy.py's layout: .mpy for the board's architecture,
www/, config.json, main.py), built on the host because rp2040js does not
emulate flash programming, so the firmware cannot write files itself.

Geometry of MicroPython's RPI_PICO board: littlefs v2, 4 KB blocks, 352 blocks
(1408 KB) at flash offset 0xA0000; the runner places the image there.
"""
import json
import os

from littlefs import LittleFS

BLOCK_SIZE = 4096
BLOCK_COUNT = 352


def deploy_files(board, with_main=True, config=None):
    """{device path: bytes} of what make deploy puts on board: the modules compiled
    with mpy-cross (built now if needed), www/, config.json (deploy's, updated
    with config), firmware/*.py; main.py only when with_main."""
    import deploy
    import mpy_build
    mpy_build.build(board, quiet=True)
    lay = deploy.layout(board)
    files = {}
    for local, dev in lay["mpy"] + lay["www"] + lay["root"]:
        if dev == "/config.json" or (dev == "/main.py" and not with_main):
            continue
        with open(os.path.join(mpy_build.ROOT, local), "rb") as f:
            files[dev] = f.read()
    cfg = deploy.make_config(board)
    cfg.update(config or {})
    files["/config.json"] = json.dumps(cfg).encode()
    return files


def build(files):
    """The littlefs image (bytes) holding files: {device path: bytes}."""
    fs = LittleFS(block_size=BLOCK_SIZE, block_count=BLOCK_COUNT, prog_size=256,
                  read_size=256, lookahead_size=32, disk_version=0x00020000)
    made = set()
    for path in sorted(files):
        parts = path.strip("/").split("/")
        for i in range(1, len(parts)):
            d = "/" + "/".join(parts[:i])
            if d not in made:
                fs.mkdir(d)
                made.add(d)
        with fs.open(path, "wb") as f:
            f.write(files[path])
    return bytes(fs.context.buffer)


def write(files, path):
    with open(path, "wb") as f:
        f.write(build(files))
    return path
