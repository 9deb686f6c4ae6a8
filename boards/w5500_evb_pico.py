"""WIZnet W5500-EVB-Pico (RP2040): a W5500 on SPI0; wiring from shared/HARDWARE.md 4.1.

SCK GP18, MOSI GP19, MISO GP16, CS GP17, RSTn GP20, INTn GP21 (all [V2]);
SPI0 at 20 MHz as in MicroPython's W5500_EVB_PICO board config.

    import boards
    nic = boards.nic("w5500_evb_pico")                 # or w5500_evb_pico.nic()
    nic = boards.nic("w5500_evb_pico", baudrate=10000000, mac=b"\x02\x00\x00\x00\x00\x07")

"""
CHIP = "w5500"
SPI_ID = 0
SCK = 18
MOSI = 19
MISO = 16
CS = 17
RST = 20
INT = 21
BAUDRATE = 20000000  # ports/rp2/boards/W5500_EVB_PICO sets SPI0 to 20 MHz

from .spi_board import build_nic, mac_from_uid  # noqa: F401 (mac_from_uid: part of the board API)


def nic(mac=None, **overrides):
    """The W5500 driver on this wiring.  mac: 6 bytes, default from
    machine.unique_id(); overrides: spi_id, sck, mosi, miso, cs, rst, int (a GPIO
    number, or None when not wired), baudrate, spi (a machine.SPI already made),
    or driver options (accept_multicast=True, block_ipv6=False, tx_timeout_ms=...)."""
    wiring = {"spi_id": SPI_ID, "sck": SCK, "mosi": MOSI, "miso": MISO, "cs": CS,
              "rst": RST, "int": INT, "baudrate": BAUDRATE}
    return build_nic(CHIP, wiring, mac, overrides)
