"""tools/demo.py runs end to end (needs root) and reports success."""
import os
import subprocess
import sys

from levels import ROOT, need_root, tool


def test_demo_runs():
    need_root()
    tool("ip")
    tool("ping")
    r = subprocess.run([sys.executable, os.path.join("tools", "demo.py")], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    out = r.stdout
    assert r.returncode == 0, out + r.stderr
    assert "[1] kernel pings stack: 5/5 replies" in out
    assert out.count("echoed, byte-exact") == 3
    assert "ECONNREFUSED" in out
    assert "[3] stack pings kernel:" in out and "5 replies" in out.split("[3]")[1].splitlines()[0]
    assert "icmp_echo_rx=5" in out
    assert "RESULT: all checks passed" in out


def test_demo_without_root_explains(monkeypatch, capsys):
    """As an ordinary user it says what it needs and exits 2, touching nothing."""
    import demo
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert demo.main() == 2
    out = capsys.readouterr().out
    assert "needs root" in out and "sudo make demo" in out
