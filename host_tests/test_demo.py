"""make demo, end to end: the firmware on the virtual board with each chip, and
on the emulated RP2040 (BOARD=w5500_evb_pico), gets a DHCP lease from dnsmasq,
serves the page, and the localhost forward works."""
import os
import subprocess
import urllib.request

import pytest

from levels import ROOT, need_root, tool, unavailable


@pytest.mark.parametrize("chip", ["w5500", "enc28j60"])
def test_make_demo_bounded_run(chip):
    need_root()
    for t in ("ip", "ping", "curl", "dnsmasq"):
        tool(t)
    env = dict(os.environ, CHIP=chip, BOARD="virtual", DEMO_SECONDS="3", DEMO_PORT="0")
    proc = subprocess.Popen(["make", "-s", "demo"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines = []
    fetched = None
    for line in proc.stdout:
        lines.append(line)
        if "in a browser on this machine" in line and fetched is None:
            url = line.split("open ", 1)[1].split()[0]
            with urllib.request.urlopen(url, timeout=5) as r:     # through the localhost forward
                fetched = (r.status, r.read())
    proc.wait(90)
    out = "".join(lines)
    assert proc.returncode == 0, out
    assert "%s chip emulator" % chip.upper() in out
    assert "board got 198.18.0.1" in out and "lease bound" in out
    assert "GET / -> 200" in out and "all checks passed" in out
    assert fetched is not None and fetched[0] == 200 and b"<html" in fetched[1].lower()


def test_make_demo_on_the_emulated_rp2040():
    """BOARD=w5500_evb_pico: the MicroPython firmware in rp2040js boots the deployed
    main.py; the demo shows its console and runs the same checks."""
    need_root()
    for t in ("ip", "ping", "curl", "dnsmasq", "node"):
        tool(t)
    import rp2board
    why = rp2board.missing_files()
    if why:
        unavailable(why, "UIPY_RP2_FIRMWARE=/path/to/RPI_PICO-<version>.uf2 make test")
    env = dict(os.environ, BOARD="w5500_evb_pico", DEMO_SECONDS="2", DEMO_PORT="0")
    env.pop("CHIP", None)
    proc = subprocess.run(["make", "-s", "demo"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=120)
    out = proc.stdout
    assert proc.returncode == 0, out
    assert "W5500 chip model on the SPI bus of w5500_evb_pico" in out
    assert "board: " in out and "lease bound" in out and "serving http://198.18.0.1" in out
    assert "board got 198.18.0.1" in out
    assert "GET / -> 200" in out and "0% packet loss" in out and "all checks passed" in out


@pytest.mark.parametrize("board, why", [("esp32_w5500", "is not an RP2040 board"),
                                        ("nosuchboard", "is not a board")])
def test_demo_board_must_be_an_rp2040_board(monkeypatch, capsys, board, why):
    import demo
    monkeypatch.setenv("BOARD", board)
    assert demo.main() == 2
    err = capsys.readouterr().err.strip()
    assert why in err and "virtual, w5500_evb_pico, pico_enc28j60" in err and "\n" not in err


def test_demo_says_where_to_get_the_firmware(monkeypatch, capsys, tmp_path):
    import demo
    import rp2board
    monkeypatch.setenv("BOARD", "pico_enc28j60")
    monkeypatch.setenv("UIPY_RP2_FIRMWARE", str(tmp_path / "RPI_PICO-missing.uf2"))
    assert demo.main() == 2
    assert rp2board.GET_FIRMWARE in capsys.readouterr().err


def test_demo_without_root_explains(monkeypatch, capsys):
    """As an ordinary user it says what it needs and exits 2, touching nothing."""
    import demo
    monkeypatch.delenv("BOARD", raising=False)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert demo.main() == 2
    err = capsys.readouterr().err
    assert "needs root" in err and "sudo make demo" in err
