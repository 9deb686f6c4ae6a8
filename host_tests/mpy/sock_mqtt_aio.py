# aiomqttc 1.0.7 (unmodified) on MicroPython's asyncio against mosquitto:
# connect, subscribe, QoS 1 publish and receive, keep-alive pings, broker
# restart and reconnect; over plain TCP or TLS.  Runs under the MicroPython unix
# port, with `socket` already being uipy.socket (sock_net.setup) or the native one.
#
#   micropython sock_mqtt_aio.py uipy|native HOST PORT CA_DER_PATH|- RESTART(0|1)
#
# Prints one line per step; "RESTART-ME" asks the test to restart the broker,
# the last line is "OK" or an exception.
import sys
import gc
import time

NET, HOST, PORT, CA, RESTART = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5] == "1"

import sock_net  # noqa: E402
sock_net.setup(NET)

import asyncio  # noqa: E402
import builtins  # noqa: E402
# aiomqttc names the builtin TimeoutError in `except` clauses; MicroPython has
# none (only asyncio.TimeoutError), so any exception reaching such a clause
# would become a NameError.  Give it the asyncio one, as CPython 3.11 does.
if not hasattr(builtins, "TimeoutError"):
    builtins.TimeoutError = asyncio.TimeoutError

# aiomqttc logs with a timestamp from machine.RTC(), which every board has but
# the unix port lacks: a stand-in that reads the host clock.
import machine as _machine  # noqa: E402
if not hasattr(_machine, "RTC"):
    class _MachineWithRTC:
        class RTC:
            def datetime(self):
                t = time.gmtime()
                return (t[0], t[1], t[2], t[6], t[3], t[4], t[5], 0)

            def init(self, parts):
                pass

        def __getattr__(self, name):
            return getattr(_machine, name)

    sys.modules["machine"] = _MachineWithRTC()
import aiomqttc  # noqa: E402

T_IN = "uipy/in"          # the test publishes a retained message here first
T_LOOP = "uipy/loop"      # the client receives its own QoS 1 publications
T_OUT = "uipy/out"        # a mosquitto_sub on the host waits here


def ctx():
    if CA == "-":
        return False
    import tls
    c = tls.SSLContext(tls.PROTOCOL_TLS_CLIENT)
    with open(CA, "rb") as f:
        c.load_verify_locations(f.read())       # tls takes cadata positionally; DER
    c.verify_mode = tls.CERT_REQUIRED
    return c


got = []
pings = [0, 0]            # sent, answered


async def on_message(proto, topic, payload, retain):
    got.append((topic, bytes(payload)))


async def on_ping(proto, sent, rtt):
    pings[0 if sent else 1] += 1


async def wait_for(cond, what, timeout_ms):
    t0 = time.ticks_ms()
    while not cond():
        if time.ticks_diff(time.ticks_ms(), t0) > timeout_ms:
            raise AssertionError("timed out waiting for " + what)
        await asyncio.sleep_ms(20)
    return time.ticks_diff(time.ticks_ms(), t0)


def have(topic, payload):
    return lambda: (topic, payload) in got


async def subscribe(client, topic):
    await client.subscribe(topic, qos=1)       # sends SUBSCRIBE; the receive task takes the SUBACK
    await wait_for(lambda: client.subscriptions[topic]["confirmed"], "SUBACK " + topic, 5000)


async def connect(client, what):
    t0 = time.ticks_ms()
    ok = await client.connect(timeout_sec=10)
    assert ok, "%s failed: %s" % (what, client.get_last_error())
    print(what, "ms=%d" % time.ticks_diff(time.ticks_ms(), t0))


async def exchange(client, n):
    await subscribe(client, T_LOOP)
    msg = "loop %d" % n
    t0 = time.ticks_ms()
    assert await client.publish(T_LOOP, msg, qos=1) is True, "no PUBACK"
    t1 = time.ticks_ms()
    await wait_for(have(T_LOOP, msg.encode()), "own message back", 5000)
    print("QOS1-LOOP", n, "ok puback_ms=%d back_ms=%d" % (
        time.ticks_diff(t1, t0), time.ticks_diff(time.ticks_ms(), t0)))


async def main():
    gc.collect()
    client = aiomqttc.MQTTClient(client_id="uipy-aio", server=HOST, port=PORT, keepalive=2,
                                 ssl=ctx())
    # over TLS asyncio.open_connection checks the certificate against HOST
    # (aiomqttc passes no server_hostname): an IP, which the test certificate names
    client.on_message = on_message
    client.on_ping = on_ping
    client.reconnect_interval = 1
    client.max_reconnect_interval = 2
    await connect(client, "CONNECTED")
    await subscribe(client, T_IN)
    await wait_for(have(T_IN, b"retained hello"), "retained message from the host", 5000)
    print("RECEIVED retained")
    await exchange(client, 1)
    assert await client.publish(T_OUT, "to host", qos=1) is True
    print("PUBLISHED to host")
    # keepalive 2 s: aiomqttc pings every second; wait for at least two answers
    p0 = pings[1]
    await wait_for(lambda: pings[1] >= p0 + 2, "two PINGRESPs", 6000)
    print("PINGS sent=%d answered=%d" % tuple(pings))
    if RESTART:
        print("RESTART-ME")
        await wait_for(lambda: not client.connected, "the client to notice the broker restart", 10000)
        print("DISCONNECT noticed")
        # aiomqttc reconnects once by itself (reconnect_interval); an application
        # loops on connect() until the broker is back
        t0 = time.ticks_ms()
        tries = 0
        while not client.connected:
            await asyncio.sleep_ms(200)
            if not client.connected:
                tries += 1
                await client.connect(timeout_sec=5)
            assert time.ticks_diff(time.ticks_ms(), t0) < 15000, "no reconnect in 15 s"
        print("RECONNECTED ms=%d app_tries=%d" % (time.ticks_diff(time.ticks_ms(), t0), tries))
        await exchange(client, 2)
    await client.disconnect()
    print("OK")


try:
    asyncio.run(main())
except BaseException as e:
    sys.print_exception(e)
    print("FAILED", repr(e))
    sock_net.close()
    sys.exit(1)
finally:
    sock_net.close()
