"""The firmware's page served through each emulated chip on the virtual board
(real driver + register-level emulator + TAP) and rendered by headless Chromium."""
import os
import re
import shutil
import tempfile

import pytest

from levels import ROOT, need_root, tool
from test_httpd_e2e import chromium_args

STACK_IP = "198.18.0.2"
KERNEL_IP = "198.18.0.1"
NAME = "uipy-chip"


@pytest.mark.parametrize("chip", ["w5500", "enc28j60"])
def test_chromium_renders_page_through_chip(chip):
    need_root()
    tool("chromium")
    import boards
    from hostrun import StackThread
    from netns import Namespace, create_tap_in_ns
    from uipy.httpd import HttpServer
    from uipy.stack import Stack

    profile = tempfile.mkdtemp(prefix="uipy-chromium-")
    with Namespace() as ns:
        tap = create_tap_in_ns(ns, KERNEL_IP + "/24")
        ns.own(tap)
        nic = boards.nic("virtual", chip=chip, tap=tap)
        stack = Stack(nic, ip=STACK_IP, gateway=KERNEL_IP, tcp={"conns": 8, "window": 8 * 1460})
        http = HttpServer(stack, root=os.path.join(ROOT, "firmware", "www"), name=NAME,
                          status=lambda: {"board": "virtual-" + chip})
        with StackThread(stack, nic, idle_s=0.002) as st:
            try:
                url = "http://%s/" % STACK_IP
                r = ns.run(chromium_args(profile) + ["--dump-dom", url], timeout=90, check=False)
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
                ns.run(chromium_args(profile) + ["--screenshot=" + shot, url], timeout=90, check=False)
                assert os.path.getsize(shot) > 10000
            finally:
                shutil.rmtree(profile, ignore_errors=True)
            errors = st.call(lambda s: s.stats["handler_errors"])
            driver_stats = st.call(lambda s: dict(getattr(nic.driver, "stats", {})))
        assert errors == 0
        assert http.requests >= 2 and driver_stats.get("rx_frames", 1) > 0
