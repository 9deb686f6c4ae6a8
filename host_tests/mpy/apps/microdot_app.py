"""Under the MicroPython unix port (host_tests/test_sock_apps.py): microdot
2.7.0, unmodified, on MicroPython's own asyncio over uipy.socket installed as
`socket`.  A text route, a JSON route, static files from the folder given as
argv[1], and /shutdown.  Prints INFO <the JSON body>, READY once the server
listens, DONE when it has shut down (or after argv[2] seconds)."""
import sys

import asyncio
import json

import mpnet
import uipy.socket

root = sys.argv[1]
seconds = int(sys.argv[2]) if len(sys.argv) > 2 else 25

stack = mpnet.stack(tcp={"conns": 8})
uipy.socket.use(stack)
uipy.socket.install()

from microdot import Microdot, send_file  # noqa: E402  (after install: it must get uipy's socket)

import socket  # noqa: E402
assert socket is uipy.socket, "install() did not replace socket"

app = Microdot()
INFO = {"stack": "uipy", "interpreter": sys.implementation.name, "answer": 42, "list": [1, 2, 3]}
mpnet.say("INFO", json.dumps(INFO))
served = {"n": 0}


@app.route("/")
async def index(request):
    served["n"] += 1
    return "Hello from microdot on uipy\n"


@app.route("/api/info")
async def info(request):
    served["n"] += 1
    return INFO


@app.route("/static/<path:path>")
async def static(request, path):
    served["n"] += 1
    if ".." in path:
        return "no", 404
    return send_file(root + "/" + path, max_age=0)


async def stop_soon():
    await asyncio.sleep_ms(200)       # the answer to /shutdown goes out first
    app.shutdown()


@app.route("/shutdown")
async def shutdown(request):
    asyncio.create_task(stop_soon())
    return "bye\n"


async def announce():
    for _ in range(100):
        if getattr(app, "server", None) is not None:
            mpnet.say("READY", mpnet.STACK_IP)
            return
        await asyncio.sleep_ms(20)
    mpnet.say("NOT READY")


async def main():
    asyncio.create_task(announce())
    try:
        await asyncio.wait_for(app.start_server(host="0.0.0.0", port=80), seconds)
    except asyncio.TimeoutError:
        mpnet.say("TIMEOUT")


asyncio.run(main())
mpnet.run(stack, 0.3)                  # the last ACKs and FINs
mpnet.say("SERVED", served["n"])
mpnet.say("STATS", " ".join("%s=%d" % (k, v) for k, v in sorted(stack.stats.items()) if v))
mpnet.say("DONE")
