"""Put MicroPython firmware on a board: esptool for ESP32, the UF2 drive for RP2040.

    python tools/device/flash.py --board esp32_w5500 --firmware ESP32_GENERIC-20250415-v1.25.0.bin --port /dev/ttyUSB0
    python tools/device/flash.py --board w5500_evb_pico --firmware W5500_EVB_PICO-20250415-v1.25.0.uf2
    python tools/device/flash.py --board pico_enc28j60 --firmware RPI_PICO-...uf2 --port /dev/ttyACM0   # no button
    python tools/device/flash.py ... --dry-run                    # print the steps, do none

ESP32 (DevKitC, classic ESP32): the micropython.org ESP32_GENERIC .bin is one
image holding bootloader, partition table and app, written at 0x1000 where the
classic ESP32 ROM looks for the second-stage bootloader (ESP32-S3/C3 would be
0x0). The flash is erased first so no old filesystem survives. The commands
are those of esptool 5 (`esptool`, `erase-flash`, `write-flash`; 4.x spelled
them `esptool.py`, `erase_flash`, `write_flash`).

RP2040: the boot ROM shows a USB drive named RPI-RP2 while BOOTSEL is held at
power-up (or after `mpremote bootloader` on a board already running
MicroPython, which --port does). Copying the .uf2 onto it flashes and reboots
the board. The drive is found in /proc/mounts (or /Volumes on macOS), or given
with --drive.

Then: tools/device/deploy.py puts uipy and the firmware on the board.
"""
import os
import shlex
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mpy_build  # noqa: E402  (a sibling host tool)

ROOT = mpy_build.ROOT
EXTENSION = {"esp32": ".bin", "rp2": ".uf2"}
ESP_CHIP = "esp32"            # every esp32_* board here is a classic ESP32 (DevKitC)
ESP_OFFSET = "0x1000"         # ESP32_GENERIC board.json deploy_options.flash_offset
ESP_BAUD = 460800
UF2_DRIVES = ("RPI-RP2", "RP2350")    # the boot ROM's volume label (RP2040, RP2350)
# which micropython.org/download image each board runs
IMAGE = {"w5500_evb_pico": "W5500_EVB_PICO (or RPI_PICO)", "pico_enc28j60": "RPI_PICO",
         "esp32_w5500": "ESP32_GENERIC", "esp32_enc28j60": "ESP32_GENERIC"}
BOOTSEL_HELP = ("Hold the BOOTSEL button while plugging the board into USB (or while pressing "
                "RESET), then let go: a USB drive named RPI-RP2 appears.")


class FlashError(ValueError):
    pass


def image_name(board):
    return IMAGE.get(board, "the %s port's generic image" % board)


def check_firmware(board, firmware):
    """The board facts; FlashError for an unknown board, a missing file or an
    image of the wrong kind for the board's chip."""
    try:
        info = mpy_build.board_info(board)
    except mpy_build.BoardError as e:
        raise FlashError(str(e))
    want = EXTENSION[info["port"]]
    kind = "an ESP32" if info["port"] == "esp32" else "an RP2040"
    ext = os.path.splitext(str(firmware))[1].lower()
    if ext != want:
        raise FlashError("uipy: %s is %s board: its MicroPython firmware is a %s file (%s from "
                         "micropython.org/download), not %r" % (info["board"], kind, want,
                                                                image_name(info["board"]), firmware))
    if not os.path.isfile(firmware):
        raise FlashError("uipy: firmware file %s not found" % firmware)
    return info


def find_uf2_drive(mounts="/proc/mounts"):
    """The mount point of a BOOTSEL-mode RP2 drive, or None."""
    points = []
    try:
        with open(mounts) as f:
            for line in f:
                fields = line.split()
                if len(fields) > 1:
                    points.append(fields[1].replace("\\040", " "))
    except OSError:
        pass
    points += [os.path.join("/Volumes", d) for d in UF2_DRIVES]
    for p in points:
        if os.path.basename(p) in UF2_DRIVES and os.path.isfile(os.path.join(p, "INFO_UF2.TXT")):
            return p
    return None


def plan(board, firmware, port=None, baud=ESP_BAUD, drive=None, erase=True):
    """The steps, as (kind, ...) tuples:
    ("run", argv)             a command line
    ("say", text)             something the user does
    ("wait_drive", labels)    wait for the RP2 boot drive
    ("copy", src, dest)       copy the .uf2 onto the drive (dest None: wherever it shows up)
    """
    info = check_firmware(board, firmware)
    if info["port"] == "esp32":
        esptool = ["esptool", "--chip", ESP_CHIP] + (["--port", port] if port else [])
        steps = []
        if erase:
            steps.append(("run", esptool + ["erase-flash"]))
        steps.append(("run", esptool + ["--baud", str(baud), "write-flash", "-z", ESP_OFFSET, firmware]))
        return steps
    name = os.path.basename(firmware)
    if drive:
        return [("copy", firmware, os.path.join(drive, name))]
    if port:
        steps = [("run", ["mpremote", "connect", port, "bootloader"])]
    else:
        steps = [("say", BOOTSEL_HELP)]
    return steps + [("wait_drive", UF2_DRIVES), ("copy", firmware, None)]


def describe(step):
    """One printable line per step (run steps are exact shell command lines)."""
    kind = step[0]
    if kind == "run":
        return shlex.join(step[1])
    if kind == "say":
        return "# " + step[1]
    if kind == "wait_drive":
        return "# wait for the %s USB drive" % step[1][0]
    dest = step[2] or "<%s drive>/%s" % (UF2_DRIVES[0], os.path.basename(step[1]))
    return shlex.join(["cp", step[1], dest])


def _tool(name):
    path = os.path.join(ROOT, ".venv", "bin", name)
    if os.path.exists(path):
        return path
    found = shutil.which(name)
    if not found:
        raise FlashError("uipy: %s not found (run make setup: it is the PyPI package %s)" % (name, name))
    return found


def run(steps, wait_s=60.0, timeout=600):
    drive = None
    for step in steps:
        print(describe(step), flush=True)
        kind = step[0]
        if kind == "run":
            r = subprocess.run([_tool(step[1][0])] + step[1][1:], timeout=timeout)
            if r.returncode != 0:
                raise FlashError("uipy: flashing stopped: %s exited with %d" % (describe(step), r.returncode))
        elif kind == "wait_drive":
            end = time.monotonic() + wait_s
            drive = find_uf2_drive()
            while drive is None and time.monotonic() < end:
                time.sleep(0.5)
                drive = find_uf2_drive()
            if drive is None:
                raise FlashError("uipy: no %s drive appeared within %d s (is it mounted?). %s"
                                 % (UF2_DRIVES[0], wait_s, BOOTSEL_HELP))
        elif kind == "copy":
            dest = step[2] or os.path.join(drive or "", os.path.basename(step[1]))
            with open(step[1], "rb") as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out)
                out.flush()
                os.fsync(out.fileno())      # the board reboots once the last block lands
            print("copied; the board reboots into MicroPython")


def main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(description="Flash MicroPython onto a board (esptool or UF2).")
    ap.add_argument("--board", required=True, help="one of: %s" % ", ".join(mpy_build.board_names()))
    ap.add_argument("--firmware", required=True, help=".bin (ESP32) or .uf2 (RP2040) from micropython.org")
    ap.add_argument("--port", help="serial port; ESP32: esptool finds one when omitted; RP2040: "
                    "reboot a running MicroPython into BOOTSEL through it")
    ap.add_argument("--baud", type=int, default=ESP_BAUD)
    ap.add_argument("--drive", help="RP2040: the mounted RPI-RP2 folder (default: found)")
    ap.add_argument("--no-erase", action="store_true", help="ESP32: keep the flash (and filesystem)")
    ap.add_argument("--wait", type=float, default=60.0, help="RP2040: seconds to wait for the drive")
    ap.add_argument("--dry-run", action="store_true", help="print the steps, do none")
    args = ap.parse_args(argv)
    try:
        drive = args.drive
        if drive is None:
            drive = find_uf2_drive()        # already in BOOTSEL mode: copy straight away
        steps = plan(args.board, args.firmware, args.port, args.baud, drive, not args.no_erase)
        if args.dry_run:
            for s in steps:
                print(describe(s))
            return 0
        run(steps, args.wait)
    except (ValueError, OSError, subprocess.TimeoutExpired) as e:
        print(e, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
