"""firmware/main.py: configuration checks and the device bring-up on an in-memory link."""
import importlib.util
import json
import os

import pytest

from levels import ROOT


def firmware():
    spec = importlib.util.spec_from_file_location("fw_main", os.path.join(ROOT, "firmware", "main.py"))
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "must hold a JSON object"),
    ('{"hostnme": "x"}', "unknown key 'hostnme'"),
    ('{"dhcp": false}', "no static ip"),
    ('{"hostname": "bad name!"}', "hostname"),
])
def test_bad_config_is_explained(tmp_path, content, message):
    fw = firmware()
    path = tmp_path / "config.json"
    path.write_text(content)
    with pytest.raises(fw.ConfigError, match=message):
        fw.load_config(str(path))


def test_defaults_without_a_file(tmp_path):
    cfg = firmware().load_config(str(tmp_path / "missing.json"))
    assert cfg["dhcp"] is True and cfg["hostname"] == "uipy"


def test_static_address_device_serves_page_over_pipe(tmp_path):
    """The firmware's Device with a static address, on the in-memory link: a
    second uipy stack fetches / and /status.json."""
    from tcphelpers import Pair, Recorder
    from uipy.tcp_conn import CONNECTED
    fw = firmware()
    pair = Pair()
    cfg = fw.load_config(str(tmp_path / "none.json"), {
        "board": "virtual", "dhcp": False, "ip": "198.18.0.20", "hostname": "fwtest",
        "www": os.path.join(ROOT, "firmware", "www")})
    device = fw.Device(cfg, nic=pair.link_b, clock=pair.clock)
    pair.b = device.stack                     # the pair now polls the firmware's stack
    got = {}
    for path in ("/", "/status.json"):
        rec = Recorder(lambda c, ev, path=path: c.send(b"GET %s HTTP/1.0\r\n\r\n" % path.encode())
                       if ev & CONNECTED else None)
        conn = pair.a.connect("198.18.0.20", 80, rec)
        pair.run(3000, until=lambda: conn.state_name() in ("CLOSED", "TIME-WAIT"))
        got[path] = bytes(rec.data)
    assert got["/"].startswith(b"HTTP/1.1 200") and b"<html" in got["/"].lower()
    status = json.loads(got["/status.json"].split(b"\r\n\r\n", 1)[1])
    assert status["name"] == "fwtest" and status["address"] == "198.18.0.20"
    assert status["board"] == "virtual" and status["dhcp"] == "static"


def test_nic_that_does_not_come_up_is_retried_with_backoff(monkeypatch, capsys):
    fw = firmware()
    made = []

    class Flaky:
        def __init__(self, cfg):
            made.append(cfg)
            if len(made) < 8:
                raise OSError("W5500 not answering: VERSIONR read 0xFF")
    monkeypatch.setattr(fw, "Device", Flaky)
    waits = []
    device = fw.start({"board": "x"}, sleep=waits.append)
    assert isinstance(device, Flaky) and len(made) == 8
    assert waits == [1, 2, 4, 8, 16, 30, 30]
    out = capsys.readouterr().out
    assert out.count("network chip not ready: W5500 not answering") == 7
    assert "retrying in 30 s" in out
    waits = []
    monkeypatch.setattr(fw, "Device", lambda cfg: (_ for _ in ()).throw(OSError("gone")))
    assert fw.start({}, sleep=waits.append, tries=3) is None and waits == [1, 2, 4]


def test_main_loop_flushes_the_nic_before_it_idles():
    """A frame still going out by DMA (W5500/ENC28J60 tx_dma) is finished
    before the loop sleeps, not one sleep later."""
    fw = firmware()
    calls = []

    class Nic:
        def flush(self):
            calls.append("flush")

        def wait(self, s):
            calls.append("wait")

    class Stack:
        now = 0
        polls = iter((1, 0, 0))

        def poll(self):
            calls.append("poll")
            return next(self.polls)

    device = fw.Device.__new__(fw.Device)
    device.nic, device.stack = Nic(), Stack()
    left = [3]

    def stop():
        left[0] -= 1
        return left[0] < 0
    device.run(stop)
    assert calls == ["poll", "poll", "flush", "wait", "poll", "flush", "wait"]
