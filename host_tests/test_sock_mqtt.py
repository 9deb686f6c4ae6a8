"""Level 5: MQTT over uipy.socket on the MicroPython unix port, against mosquitto
in the test namespace (host_tests/mpy_net.py: TAP + relay; tools/net/mosquitto.py).

- aiomqttc 1.0.7, unmodified, on MicroPython's asyncio (open_connection over
  uipy.socket): connect, subscribe, a retained message from the host, QoS 1
  publish and receive, publish to a host subscriber, keep-alive pings; the
  broker restarted under it and the client reconnecting; the same over TLS
  (open_connection(..., ssl=ctx), the certificate verified).
- the socket calls umqtt.simple makes (it is not on PyPI): getaddrinfo()[0][-1],
  socket(), connect, write(buf[, n]), read(n), setblocking, settimeout, close,
  in a small MQTT exchange written in host_tests/mpy/sock_mqtt_raw.py.

Needs root (skipped locally without it, a failure under CI=true).
UIPY_SOCK_NATIVE=1 runs the scripts on MicroPython's own sockets (same namespace)
to tell a script's fault from uipy's.
"""
import os
import re

import pytest

from levels import need_root, tool

KERNEL_IP = "198.18.0.1"
STACK_IP = "198.18.0.2"                # mpnet.stack()'s address
NET = "native" if os.environ.get("UIPY_SOCK_NATIVE") == "1" else "uipy"


@pytest.fixture
def bed(tmp_path):
    need_root()
    tool("openssl")
    for t in ("mosquitto", "mosquitto_sub", "mosquitto_pub"):
        tool(t)
    import tls_certs
    from mosquitto import Broker
    from mpy_net import MpyNet
    certs = tls_certs.make(tmp_path / "certs")
    net = MpyNet(tmp_path)
    try:
        net.certs = certs
        net.broker = Broker(net.ns, tmp_path / "broker", certs=certs)
        net.broker.start()
        yield net
    finally:
        if getattr(net, "broker", None) is not None:
            net.broker.stop()
        net.close()


def host_pub(net, topic, message, retain=False, qos=1):
    from mosquitto import pub_args
    r = net.ns.run(pub_args(KERNEL_IP, topic, message, qos=qos, retain=retain), check=False, timeout=10)
    assert r.returncode == 0, r.stderr


def host_sub(net, topic, count=1, wait_s=25):
    """mosquitto_sub in the namespace, started now; returns the process."""
    from mosquitto import sub_args
    import subprocess
    return net.ns.popen(sub_args(KERNEL_IP, topic, count=count, wait_s=wait_s, qos=1),
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def run_aiomqttc(net, port, ca, restart):
    host_pub(net, "uipy/in", "retained hello", retain=True)
    sub = host_sub(net, "uipy/out")
    net.start("host_tests/mpy/sock_mqtt_aio.py", NET, KERNEL_IP, port, ca, "1" if restart else "0")
    net.wait_for("CONNECTED", 15)
    net.wait_for("RECEIVED retained", 10)
    net.wait_for("QOS1-LOOP 1 ok", 10)
    net.wait_for("PUBLISHED to host", 10)
    out, err = sub.communicate(timeout=10)
    assert out.decode().strip() == "uipy/out to host", (out, err)
    pings = net.wait_for("PINGS", 10)
    if restart:
        net.wait_for("RESTART-ME", 5)
        net.broker.restart()
        net.wait_for("RECONNECTED", 20)
        net.wait_for("QOS1-LOOP 2 ok", 10)
    net.wait_for("OK", 10)
    assert net.wait_exit(10) == 0, net.output()
    print(net.output())
    return pings


def test_aiomqttc_connect_qos1_keepalive_and_broker_restart(bed):
    run_aiomqttc(bed, 1883, "-", restart=True)


def test_aiomqttc_over_tls(bed):
    ca = os.path.join(str(bed.dir), "ca.der")
    with open(ca, "wb") as f:
        f.write(bed.certs.ca_der)
    run_aiomqttc(bed, 8883, ca, restart=True)
    log = bed.broker.read_log()
    client_ip = KERNEL_IP if NET == "native" else STACK_IP
    assert re.search(r"New connection from %s:\d+ on port 8883" % re.escape(client_ip), log), log
    assert "uipy-aio" in log, log


def test_umqtt_simple_socket_calls(bed):
    """The calls umqtt.simple makes, in order, in a CONNECT / SUBSCRIBE /
    PUBLISH (QoS 0 and 1) / PING / DISCONNECT exchange with mosquitto."""
    sub = host_sub(bed, "uipy/raw/out")
    bed.start("host_tests/mpy/sock_mqtt_raw.py", NET, KERNEL_IP, "1883")
    bed.wait_for("SUBSCRIBED", 15)
    host_pub(bed, "uipy/raw/in", "from host")
    bed.wait_for("RECEIVED from host", 10)
    out, err = sub.communicate(timeout=10)
    assert out.decode().strip() == "uipy/raw/out qos1 from device", (out, err)
    bed.wait_for("OK", 10)
    assert bed.wait_exit(10) == 0, bed.output()
    print(bed.output())
