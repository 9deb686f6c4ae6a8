"""Level 5 ecosystem: unmodified third-party libraries on the MicroPython unix
port, over uipy.socket installed as `socket`, with MicroPython's own asyncio;
frames relayed to a TAP in a test namespace (host_tests/mpy_net.py).

- microdot 2.7.0 (asyncio server): a text route, a JSON route and static files,
  fetched by curl (byte-exact) and rendered by headless Chromium.
- urequests 0.1.2: GET and POST to a kernel-side HTTP server, the address by
  DHCP and the host name by DNS, both from dnsmasq.

Needs root (skipped locally without it, a failure under CI=true)."""
import json
import os
import shutil
import tempfile
import time

import pytest

from levels import ROOT, need_root, tool
from mpy_net import KERNEL_IP, STACK_IP, MpyNet

PAGE = bytes((i * 7 + (i >> 8)) & 0xFF for i in range(50000))     # 50 KB, binary
INDEX = """<!doctype html>
<html><head><meta charset="utf-8"><title>microdot on uipy</title></head>
<body><h1 id="title">microdot on uipy</h1><p id="info">-</p>
<script>
fetch("/api/info").then(r => r.json()).then(j => {
  document.getElementById("info").textContent = j.stack + " " + j.interpreter + " " + j.answer;
});
</script></body></html>
"""


@pytest.fixture
def net(tmp_path):
    need_root()
    n = MpyNet(tmp_path)
    yield n
    n.close()


def http(net, path, *opts):
    rc, body, err = net.curl("http://%s%s" % (STACK_IP, path), *opts)
    assert rc == 0, "curl %s: %s\n%s" % (path, err, net.output())
    return body


def test_microdot_asyncio_server_curl_and_chromium(net, tmp_path):
    from test_httpd_e2e import chromium_args
    chromium = tool("chromium")
    www = tmp_path / "www"
    www.mkdir()
    (www / "page.bin").write_bytes(PAGE)
    (www / "index.html").write_text(INDEX)
    t0 = time.monotonic()
    net.start("host_tests/mpy/apps/microdot_app.py", str(www), "25", heap="512K")
    info_line = net.wait_for("INFO ", 10)
    net.wait_for("READY", 10)
    t_ready = time.monotonic() - t0

    assert http(net, "/") == b"Hello from microdot on uipy\n"
    info = http(net, "/api/info")
    assert info == info_line[len("INFO "):].encode()                  # byte-exact: what json.dumps made
    assert json.loads(info) == {"stack": "uipy", "interpreter": "micropython", "answer": 42, "list": [1, 2, 3]}
    head, _, body = http(net, "/api/info", "-i").partition(b"\r\n\r\n")
    assert b"Content-Type: application/json" in head and body == info, head
    t = time.monotonic()
    assert http(net, "/static/page.bin") == PAGE
    t_page = time.monotonic() - t
    assert http(net, "/static/index.html") == INDEX.encode()
    assert http(net, "/nothing", "-i").startswith(b"HTTP/1.0 404 ")

    # keep-alive-less HTTP/1.0 and a few at once: four parallel curls
    procs = [net.ns.popen([tool("curl"), "-sS", "--max-time", "10", "http://%s/static/page.bin" % STACK_IP])
             for _ in range(4)]
    for p in procs:
        out, err = p.communicate(timeout=15)
        assert p.returncode == 0 and out == PAGE, err

    profile = tempfile.mkdtemp(prefix="uipy-chromium-")
    try:
        r = net.ns.run(chromium_args(profile) + ["--dump-dom", "http://%s/static/index.html" % STACK_IP],
                       timeout=60, check=False)
        assert '<h1 id="title">microdot on uipy</h1>' in r.stdout, (r.returncode, r.stderr[-2000:], net.output())
        assert '<p id="info">uipy micropython 42</p>' in r.stdout, r.stdout[-2000:]    # fetch() of the JSON route
    finally:
        shutil.rmtree(profile, ignore_errors=True)

    assert http(net, "/shutdown") == b"bye\n"
    net.wait_for("DONE", 10)
    assert net.wait_exit(5) == 0, net.output()
    out = net.output()
    assert "handler_errors" not in out and "Traceback" not in out, out
    print("microdot: ready %.2f s, 50 KB page %.3f s, total %.2f s, relay %s"
          % (t_ready, t_page, time.monotonic() - t0, net.relay.counts))


@pytest.fixture
def dns_net(net, tmp_path):
    """net plus dnsmasq (DHCP, and DNS with web.uipy.test at the kernel's
    address) and the kernel-side HTTP server on port 8080."""
    import dnsmasq
    from dnsmasq_net import RANGE
    work = str(tmp_path / "dnsmasq")
    os.makedirs(work)
    dnsmasq.start(net.ns, dnsmasq.command(tool("dnsmasq"), net.tap.kernel_if, work, RANGE,
                                          extra=["--no-ping", "--log-queries", "--address=/web.uipy.test/" + KERNEL_IP]),
                  work)
    net.dnsmasq_dir = work
    server = net.ns.popen(["python3", os.path.join(ROOT, "tools", "net", "http_echo.py"), KERNEL_IP, "8080"])
    assert server.stdout.readline().strip() == b"listening", server.stderr.read()
    return net


def test_urequests_get_and_post_by_name_over_dhcp_and_dns(dns_net):
    import dnsmasq
    from dnsmasq_net import RANGE, in_range
    net = dns_net
    t0 = time.monotonic()
    net.start("host_tests/mpy/apps/urequests_app.py", "http://web.uipy.test:8080", heap="512K")
    bound = net.wait_for("BOUND", 15).split()
    assert in_range(bound[1], RANGE) and bound[3:] == [KERNEL_IP], bound
    net.wait_for("DONE", 20)
    assert net.wait_exit(5) == 0, net.output()
    results = {}
    for line in net.output().splitlines():
        if line.startswith("RESULT "):
            _, name, body = line.split(" ", 2)
            results[name] = json.loads(body)

    get = results["get"]
    assert get["status"] == 200 and get["text"] == "Hello from the kernel side\r\nsecond line\r\n", get
    assert get["headers"]["Content-Type"] == "text/plain"
    assert results["get_params"]["headers"].get("X-Query") == "q=x", results["get_params"]

    echo = json.loads(results["post_text"]["text"])
    assert results["post_text"]["status"] == 200
    assert echo == {"method": "POST", "path": "/echo", "content_type": "text/plain",
                    "content_length": 28, "body": "hello=world&from=micropython"}, echo
    form = json.loads(results["post_form"]["text"])
    assert form["content_type"] == "application/x-www-form-urlencoded" and form["body"] == "name=uipy-stack_1.0", form
    assert "web.uipy.test" in dnsmasq.read_log(net.dnsmasq_dir)       # the name went through dnsmasq
    print("urequests: %.2f s, relay %s" % (time.monotonic() - t0, net.relay.counts))
