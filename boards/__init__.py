"""Supported boards: boards.nic(name) builds that board's NIC driver.

    import boards
    nic = boards.nic("w5500_evb_pico")               # wiring from boards/w5500_evb_pico.py
    nic = boards.nic("esp32_enc28j60", baudrate=10000000, mac=b"\x02\x00\x00\x00\x00\x07")
    stack = Stack(nic, ip="192.168.1.50")

Each board module holds its wiring (shared/HARDWARE.md section 4) as constants
(SPI_ID, SCK, MOSI, MISO, CS, RST, INT, BAUDRATE, CHIP) and nic(mac=None,
**overrides). "virtual" is the host-only board: a chip emulator on a TAP.
"""
BOARDS = ("w5500_evb_pico", "pico_enc28j60", "esp32_w5500", "esp32_enc28j60", "virtual")


def load(name):
    """The board module for name ("W5500-EVB-Pico" works too); ValueError
    listing the known board names if there is no such board."""
    key = str(name).lower().replace("-", "_")
    if key == "w5500_evb_pico":
        from . import w5500_evb_pico as m
    elif key == "pico_enc28j60":
        from . import pico_enc28j60 as m
    elif key == "esp32_w5500":
        from . import esp32_w5500 as m
    elif key == "esp32_enc28j60":
        from . import esp32_enc28j60 as m
    elif key == "virtual":
        from . import virtual as m
    else:
        raise ValueError("uipy: unknown board %r; known boards: %s" % (name, ", ".join(BOARDS)))
    return m


def nic(name, **overrides):
    """Build the NIC of board name; overrides go to that board's nic()
    (mac=..., wiring changes such as baudrate=... or cs=..., driver options)."""
    return load(name).nic(**overrides)
