"""make demo, end to end: the firmware on the virtual board with each chip gets
a DHCP lease from dnsmasq, serves the page, and the localhost forward works."""
import os
import subprocess
import urllib.request

import pytest

from levels import ROOT, need_root, tool


@pytest.mark.parametrize("chip", ["w5500", "enc28j60"])
def test_make_demo_bounded_run(chip):
    need_root()
    for t in ("ip", "ping", "curl", "dnsmasq"):
        tool(t)
    env = dict(os.environ, CHIP=chip, DEMO_SECONDS="3", DEMO_PORT="0")
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


def test_demo_without_root_explains(monkeypatch, capsys):
    """As an ordinary user it says what it needs and exits 2, touching nothing."""
    import demo
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert demo.main() == 2
    err = capsys.readouterr().err
    assert "needs root" in err and "sudo make demo" in err
