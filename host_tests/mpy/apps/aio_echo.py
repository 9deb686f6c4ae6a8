"""Under the MicroPython unix port (host_tests/test_sock_aio.py, tools/bench):
MicroPython's asyncio over uipy.socket.  An echo server (asyncio.start_server,
port 7) and, when argv[1] is given, a client task that connects to the kernel
at that port, sends lines, reads them back and reports.  Prints READY once
listening, CLIENT <result> when the client is done, DONE at the end (after
argv[2] seconds at most)."""
import sys

import asyncio

import mpnet
import uipy.socket as socket

client_port = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1] != "-" else 0
seconds = int(sys.argv[2]) if len(sys.argv) > 2 else 20

stack = mpnet.stack(tcp={"conns": 8})
socket.use(stack)
socket.install()
done = asyncio.Event()


async def echo(reader, writer):
    while True:
        line = await reader.readline()
        if not line:
            break
        if line == b"quit\n":
            done.set()
        writer.write(line)
        await writer.drain()
    writer.close()
    await writer.wait_closed()


async def client():
    try:
        reader, writer = await asyncio.open_connection(mpnet.KERNEL_IP, client_port)
        got = []
        for i in range(20):
            writer.write(b"line %d\n" % i)
            await writer.drain()
            got.append(await reader.readline())
        ok = got == [b"line %d\n" % i for i in range(20)]
        writer.close()
        await writer.wait_closed()
        # a read that times out, through asyncio.wait_for
        r2, w2 = await asyncio.open_connection(mpnet.KERNEL_IP, client_port + 1)
        try:
            await asyncio.wait_for(r2.read(10), 0.3)
            timed_out = False
        except asyncio.TimeoutError:
            timed_out = True
        w2.close()
        # refused: MicroPython's open_connection returns once the socket polls
        # writable (or in error), so the error comes with the first read
        try:
            r3, w3 = await asyncio.open_connection(mpnet.KERNEL_IP, client_port + 2)
            await r3.read(10)
            refused = "no"
        except OSError as e:
            refused = e.errno
        mpnet.say("CLIENT", ok, timed_out, refused)
    except Exception as e:
        sys.print_exception(e)
        mpnet.say("CLIENT error", repr(e))


async def main():
    server = await asyncio.start_server(echo, "0.0.0.0", 7)
    mpnet.say("READY")
    if client_port:
        asyncio.create_task(client())
    try:
        await asyncio.wait_for(done.wait(), seconds)
    except asyncio.TimeoutError:
        pass
    server.close()
    await server.wait_closed()
    mpnet.say("DONE")


asyncio.run(main())
