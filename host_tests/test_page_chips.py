"""The firmware's page served through each emulated chip on the virtual board
(real driver + register-level emulator + TAP) and rendered by headless Chromium."""
import os
import re
import shutil
import tempfile

import pytest

from kernel_net import KERNEL_IP, STACK_IP, KernelNet
from levels import ROOT, need_root, tool
from test_httpd_e2e import chromium_args

NAME = "uipy-chip"


@pytest.mark.parametrize("chip", ["w5500", "enc28j60"])
def test_chromium_renders_page_through_chip(chip):
    need_root()
    tool("chromium")
    from uipy.httpd import HttpServer
    from uipy.stack import Stack

    servers = []

    def build(nic):
        stack = Stack(nic, ip=STACK_IP, gateway=KERNEL_IP, tcp={"conns": 8, "window": 8 * 1460})
        servers.append(HttpServer(stack, root=os.path.join(ROOT, "firmware", "www"), name=NAME,
                                  status=lambda: {"board": "virtual-" + chip}))
        return stack

    profile = tempfile.mkdtemp(prefix="uipy-chromium-")
    net = KernelNet(chip=chip).start(build, idle_s=0.002)
    try:
        url = "http://%s/" % STACK_IP
        r = net.ns.run(chromium_args(profile) + ["--dump-dom", url], timeout=90, check=False)
        dom = r.stdout
        assert '<h1 id="name">%s</h1>' % NAME in dom, r.stderr[-2000:]
        assert '<span id="addr">%s</span>' % STACK_IP in dom
        assert "<td>board</td><td>virtual-%s</td>" % chip in dom
        m = re.search(r'<div class="v" id="requests">(\d+)</div>', dom)
        assert m and int(m.group(1)) >= 2                # the page and at least one fetch()
        os.makedirs(os.path.join(ROOT, "build"), exist_ok=True)
        shot = os.path.join(ROOT, "build", "page_%s.png" % chip)
        if os.path.exists(shot):
            os.unlink(shot)
        net.ns.run(chromium_args(profile) + ["--screenshot=" + shot, url], timeout=90, check=False)
        assert os.path.getsize(shot) > 10000
        errors = net.call(lambda s: s.stats["handler_errors"])
        driver_stats = net.call(lambda s: dict(getattr(net.nic.driver, "stats", {})))
    finally:
        shutil.rmtree(profile, ignore_errors=True)
        net.close()
    assert errors == 0
    assert servers[0].requests >= 2 and driver_stats.get("rx_frames", 1) > 0
