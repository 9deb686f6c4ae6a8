"""Under the MicroPython unix port (host_tests/test_sock_apps.py): urequests
0.1.2, unmodified, over uipy.socket installed as `socket`.  The address and
the DNS server come from dnsmasq by DHCP; the host name in the URLs (argv[1],
e.g. http://web.uipy.test:8080) is resolved through it.

urequests 0.1.2 is packaged as a folder without __init__.py (the module is
urequests/urequests.py), so it is imported as `from urequests import urequests`.
Each result is printed as one line: RESULT <name> <json>."""
import sys

import json

import mpnet
import uipy.socket
from uipy.dhcp import Dhcp

base = sys.argv[1]
stack = mpnet.stack(ip=None)
stack.hostname = "uipy-mpy"
dhcp = Dhcp(stack, retry_ms=400, retry_max_ms=1600, jitter_ms=100, init_delay_ms=0,
            probe_num=2, probe_wait_ms=0, probe_min_ms=100, probe_max_ms=100, announce_wait_ms=200)
dhcp.start()
if not mpnet.run(stack, 10, until=lambda: dhcp.state == "BOUND"):
    mpnet.say("NO LEASE", dhcp.state)
    sys.exit(1)
mpnet.say("BOUND", "%d.%d.%d.%d" % tuple(stack.ip), "dns",
          " ".join("%d.%d.%d.%d" % tuple(d) for d in stack.dns_servers))
uipy.socket.use(stack)
uipy.socket.install()

from urequests import urequests as requests  # noqa: E402  (after install)

assert requests.socket is uipy.socket, "urequests did not get uipy's socket"


def result(name, r):
    mpnet.say("RESULT", name, json.dumps({"status": r.status_code, "headers": r.headers, "text": r.text}))


result("get", requests.get(base + "/hello.txt"))
result("post_text", requests.post(base + "/echo", data="hello=world&from=micropython",
                                  headers={"Content-Type": "text/plain"}))
# a form value without spaces: urequests 0.1.2's quote_plus turns " " into "+"
# and then escapes that "+" as %2b (its own bug; the value would arrive as "uipy+stack")
result("post_form", requests.post(base + "/form", data={"name": "uipy-stack_1.0"}))
result("get_params", requests.get(base + "/hello.txt", params={"q": "x"}))
mpnet.say("STATS", " ".join("%s=%d" % (k, v) for k, v in sorted(stack.stats.items()) if v))
mpnet.say("DONE")
