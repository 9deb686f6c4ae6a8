# Frozen-build manifest: MicroPython firmware with uipy built in (bytecode in
# flash: imports cost no compile heap and no filesystem space).
#
# Read by MicroPython's tools/manifestfile.py, not imported: include, package,
# module and options are the names it provides. Paths are relative to this file.
#
#   cd micropython && make -C mpy-cross
#   cd ports/rp2   && make BOARD=W5500_EVB_PICO submodules && \
#                     make BOARD=W5500_EVB_PICO FROZEN_MANIFEST=/abs/path/to/uipy/firmware/manifest.py
#   cd ports/esp32 && make BOARD=ESP32_GENERIC submodules && \
#                     make BOARD=ESP32_GENERIC FROZEN_MANIFEST=/abs/path/to/uipy/firmware/manifest.py
#   (rp2: build-W5500_EVB_PICO/firmware.uf2; esp32: build-ESP32_GENERIC/firmware.bin;
#    then tools/device/flash.py, and tools/device/deploy.py --frozen for main.py, config.json and www/)
#
# That freezes every device board. For one board only, point FROZEN_MANIFEST at
# a manifest of your own holding:
#   include("/abs/path/to/uipy/firmware/manifest.py", board="w5500_evb_pico")
#
# main.py, config.json and www/ stay on the filesystem, where users change them.
# pyright: reportUndefinedVariable=false

options.defaults(board=None, port_manifest=True)

# the port's own frozen modules (asyncio, ...), which FROZEN_MANIFEST replaces
if options.port_manifest:
    include("$(PORT_DIR)/boards/manifest.py")

package("uipy", base_path="../lib")

# board -> chip, as boards/<board>.py CHIP says (host_tests/test_device_tools.py checks)
CHIPS = {
    "w5500_evb_pico": "w5500",
    "pico_enc28j60": "enc28j60",
    "esp32_w5500": "w5500",
    "esp32_enc28j60": "enc28j60",
}
if options.board:
    if options.board not in CHIPS:
        raise ValueError("uipy manifest: unknown board %r; boards: %s" % (options.board, ", ".join(CHIPS)))
    frozen_boards = [options.board]
else:
    frozen_boards = sorted(CHIPS)

for chip in sorted(set(CHIPS[b] for b in frozen_boards)):
    module(chip + ".py", base_path="../drivers")
    module(chip + "_setup.py", base_path="../drivers")   # its bring-up, loaded once

# not boards/virtual.py: host only
package("boards", files=["__init__.py", "spi_board.py"] + [b + ".py" for b in frozen_boards],
        base_path="..")
