"""Put uipy and the firmware on a board running stock MicroPython, with mpremote.

    python tools/device/deploy.py --board w5500_evb_pico --port /dev/ttyACM0
    python tools/device/deploy.py --board esp32_w5500 --port /dev/ttyUSB0 --ip 192.168.1.50 --gateway 192.168.1.1
    python tools/device/deploy.py --board pico_enc28j60 --port /dev/ttyACM0 --dry-run   # print the commands

First the board's modules are compiled (tools/device/mpy_build.py, build/mpy/<board>/),
then, one mpremote command per step:

    /lib/uipy/*.mpy, /lib/<chip>.mpy, /lib/boards/*.mpy    the stack, driver, board package
    /www/...                                               firmware/www, the web page
    /config.json                                           board, hostname, dhcp, ip, ...
    /lib/socket.py                                         with --socket: `import socket` gives uipy.socket
    /<firmware>.py, /main.py                               firmware/*.py (not manifest.py); main.py last
    reset                                                  hard reset: main.py starts

A first step runs build/deploy/<board>/prepare.py on the board: it makes the
folders (mkdir is not idempotent in mpremote) and deletes any .py file that
would shadow a new .mpy (MicroPython imports x.py before x.mpy). mpremote's
cp skips a file whose SHA-256 is already the same on the board, so a second
deploy copies only what changed.

config.json is made in build/deploy/<board>/: firmware/config.json when there
is one, then "board" set to the board deployed, then the command-line options.
"""
import json
import os
import shlex
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mpy_build  # noqa: E402  (a sibling host tool)

ROOT = mpy_build.ROOT
LIB = "/lib"
WWW = "/www"


# --socket: a one-line socket.py in /lib makes `import socket` give uipy's (a
# file on the path wins over MicroPython's built-in socket, which is an
# extensible module: on ESP32 that hides the Wi-Fi socket, hence opt-in)
SOCKET_SHIM = ('"""uipy.socket as `import socket` (installed by make deploy SOCKET=1): its names,\n'
               'looked up in uipy.socket (a star import would load uipy.socket_more for the\n'
               'option constants)."""\n'
               "import uipy.socket\n\n\n"
               "def __getattr__(name):\n"
               "    return getattr(uipy.socket, name)\n")


class DeployError(ValueError):
    pass


def _dotted_quad(value, what):
    parts = str(value).split(".")
    if len(parts) != 4 or not all(p.isdigit() and int(p) < 256 for p in parts):
        raise DeployError("uipy: %s must be a dotted IPv4 address like 192.168.1.50, not %r" % (what, value))
    return str(value)


def make_config(board, options=None, firmware_dir="firmware"):
    """The config.json dict: firmware/config.json (if any), then board, then options
    (hostname, dhcp, ip, netmask, gateway, dns; None means not given). A static
    ip without dhcp given turns DHCP off."""
    cfg = {}
    path = os.path.join(ROOT, firmware_dir, "config.json")
    if os.path.exists(path):
        with open(path) as f:
            try:
                cfg = json.load(f)
            except ValueError as e:
                raise DeployError("uipy: %s is not valid JSON: %s" % (path, e))
        if not isinstance(cfg, dict):
            raise DeployError("uipy: %s must hold a JSON object" % path)
    cfg["board"] = mpy_build.normalize(board)
    opts = dict((k, v) for k, v in (options or {}).items() if v is not None)
    for key in ("ip", "netmask", "gateway", "dns"):
        if key in opts:
            _dotted_quad(opts[key], key)
    name = opts.get("hostname")
    if name is not None and not (0 < len(name) < 64 and all((c.isascii() and c.isalnum()) or c == "-" for c in name)):
        raise DeployError("uipy: hostname %r must be 1-63 letters, digits or '-'" % (name,))
    if "ip" in opts and "dhcp" not in opts:
        opts["dhcp"] = False
    cfg.update(opts)
    if cfg.get("dhcp") is False and not cfg.get("ip"):
        raise DeployError("uipy: DHCP is off but no static address is given (--ip)")
    return cfg


def layout(board, firmware_dir="firmware", mpy_dir=None, stage_dir=None, frozen=False, socket=False):
    """Where every file goes: {"mpy": [(local, device)], "www": [...], "root": [...],
    "dirs": [device folders, parents first], "shadows": [.py files to delete],
    "stage": the folder of prepare.py and config.json}. Local paths are relative
    to the repository (absolute when given so). frozen: the firmware already holds
    the modules (firmware/manifest.py): copy no .mpy files."""
    p = mpy_build.plan(board, mpy_dir)
    name = p["board"]
    stage = stage_dir or "build/deploy/" + name
    mpy = [] if frozen else [(p["out_dir"] + "/" + t, LIB + "/" + t) for _, t in p["files"]]
    www = []
    www_src = os.path.join(ROOT, firmware_dir, "www")
    for d, subdirs, files in os.walk(www_src):
        subdirs.sort()
        rel = os.path.relpath(d, www_src).replace(os.sep, "/")
        for f in sorted(files):
            sub = "" if rel == "." else rel + "/"
            www.append((firmware_dir + "/www/" + sub + f, WWW + "/" + sub + f))
    fw = sorted(f for f in os.listdir(os.path.join(ROOT, firmware_dir))
                if f.endswith(".py") and f not in ("manifest.py", "main.py"))
    root = [(stage + "/config.json", "/config.json")]
    if socket:
        root.append((stage + "/socket.py", LIB + "/socket.py"))
    root += [(firmware_dir + "/" + f, "/" + f) for f in fw]
    if os.path.exists(os.path.join(ROOT, firmware_dir, "main.py")):
        root.append((firmware_dir + "/main.py", "/main.py"))   # last: the new app starts on new modules
    dirs = []
    for _, dev in mpy + www:
        parts = dev.split("/")[1:-1]
        for i in range(len(parts)):
            d = "/" + "/".join(parts[:i + 1])
            if d not in dirs:
                dirs.append(d)
    shadows = [dev[:-4] + ".py" for _, dev in mpy]
    return {"board": name, "mpy": mpy, "www": www, "root": root, "dirs": dirs,
            "shadows": shadows, "stage": stage}


def prepare_script(lay):
    """The MicroPython script run first on the board (mpremote run)."""
    return "\n".join([
        "# made by tools/device/deploy.py: folders for the copy, and no .py shadowing a new .mpy",
        "import os",
        "def exists(p):",
        "    try:",
        "        os.stat(p)",
        "        return True",
        "    except OSError:",
        "        return False",
        "for d in %r:" % (tuple(lay["dirs"]),),
        "    if not exists(d):",
        "        os.mkdir(d)",
        "for f in %r:" % (tuple(lay["shadows"]),),
        "    if exists(f):",
        "        os.remove(f)",
        "        print('removed', f)",
        "",
    ])


def _cp_groups(pairs):
    """Group (local, device) pairs by device folder, in first-seen order."""
    groups = []
    for local, dev in pairs:
        folder = dev.rsplit("/", 1)[0] + "/"
        if groups and groups[-1][0] == folder:
            groups[-1][1].append(local)
        else:
            groups.append((folder, [local]))
    return groups


def plan(board, port, firmware_dir="firmware", mpy_dir=None, stage_dir=None, frozen=False, socket=False):
    """The mpremote command lines (argv lists) that deploy board through port."""
    lay = layout(board, firmware_dir, mpy_dir, stage_dir, frozen, socket)
    con = ["mpremote", "connect", port]
    cmds = [con + ["run", lay["stage"] + "/prepare.py"]]
    for folder, files in _cp_groups(lay["mpy"] + lay["www"]):
        cmds.append(con + ["fs", "cp"] + files + [":" + folder])
    # root files one by one: "cp a b :/" would need mpremote to stat "" on the board
    root = []
    for local, dev in lay["root"]:
        root += (["+"] if root else []) + ["fs", "cp", local, ":" + dev]
    cmds.append(con + root)
    cmds.append(con + ["reset"])
    return cmds


def stage(board, options=None, firmware_dir="firmware", mpy_dir=None, stage_dir=None, frozen=False,
          socket=False):
    """Write prepare.py and config.json (and socket.py) into the stage folder; return the layout."""
    lay = layout(board, firmware_dir, mpy_dir, stage_dir, frozen, socket)
    out = lay["stage"] if os.path.isabs(lay["stage"]) else os.path.join(ROOT, lay["stage"])
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "prepare.py"), "w") as f:
        f.write(prepare_script(lay))
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(make_config(board, options, firmware_dir), f, indent=2, sort_keys=True)
        f.write("\n")
    if socket:
        with open(os.path.join(out, "socket.py"), "w") as f:
            f.write(SOCKET_SHIM)
    return lay


def command_line(argv):
    return shlex.join(argv)


def mpremote_path():
    path = os.path.join(ROOT, ".venv", "bin", "mpremote")
    if os.path.exists(path):
        return path
    found = shutil.which("mpremote")
    if not found:
        raise DeployError("uipy: mpremote not found (run make setup: it is the PyPI package mpremote)")
    return found


def run(cmds, timeout=120):
    """Run each command line from the repository root; stop at the first failure."""
    exe = mpremote_path()
    for argv in cmds:
        print("$", command_line(argv), flush=True)
        r = subprocess.run([exe] + argv[1:], cwd=ROOT, timeout=timeout)
        if r.returncode != 0:
            raise DeployError("uipy: deploy stopped: %s exited with %d" % (command_line(argv), r.returncode))


def main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(description="Build and copy uipy + firmware to a MicroPython board.")
    ap.add_argument("--board", required=True, help="one of: %s" % ", ".join(mpy_build.board_names()))
    ap.add_argument("--port", default="auto",
                    help="serial port (/dev/ttyACM0, /dev/ttyUSB0, COM3) or auto (default)")
    ap.add_argument("--dry-run", action="store_true", help="build and stage, print the commands, run none")
    ap.add_argument("--frozen", action="store_true",
                    help="the firmware has uipy frozen in (firmware/manifest.py): copy no .mpy files")
    ap.add_argument("--socket", action="store_true",
                    help="also /lib/socket.py: `import socket` gives uipy.socket (on ESP32 it hides the Wi-Fi socket)")
    ap.add_argument("--hostname")
    dhcp = ap.add_mutually_exclusive_group()
    dhcp.add_argument("--dhcp", dest="dhcp", action="store_const", const=True, default=None)
    dhcp.add_argument("--no-dhcp", dest="dhcp", action="store_const", const=False)
    for key in ("ip", "netmask", "gateway", "dns"):
        ap.add_argument("--" + key)
    args = ap.parse_args(argv)
    options = {"hostname": args.hostname, "dhcp": args.dhcp, "ip": args.ip,
               "netmask": args.netmask, "gateway": args.gateway, "dns": args.dns}
    try:
        make_config(args.board, options)          # bad options fail before anything is built
        cmds = plan(args.board, args.port, frozen=args.frozen, socket=args.socket)
        if not args.frozen:
            mpy_build.build(args.board)
        stage(args.board, options, frozen=args.frozen, socket=args.socket)
        if args.dry_run:
            for argv_ in cmds:
                print(command_line(argv_))
            return 0
        run(cmds)
    except (ValueError, OSError, subprocess.TimeoutExpired) as e:
        print(e, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
