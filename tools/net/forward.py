"""Forward a localhost TCP port into a network namespace (host only).

The demo's board lives in a namespace; a browser on this machine reaches it at
http://127.0.0.1:<port>/.  Each accepted connection gets a socket made inside
the namespace (packet_link.socket_in_netns) connected to the board, and two
threads copy bytes both ways.  The target must be in 198.18.0.0/15.
"""
import socket
import threading

from netns import check_addr
from packet_link import socket_in_netns


class PortForward:
    def __init__(self, netns, target_ip, target_port=80, listen_port=8080, listen_ip="127.0.0.1"):
        check_addr(target_ip)
        self.netns = netns
        self.target = (target_ip, target_port)
        self.server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind((listen_ip, listen_port))
        self.server.listen(8)
        self.server.settimeout(0.2)
        self.port = self.server.getsockname()[1]
        self.running = True
        self.connections = 0
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while self.running:
            try:
                client, _ = self.server.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client):
        upstream = socket_in_netns(self.netns, socket.AF_INET, socket.SOCK_STREAM)
        try:
            upstream.settimeout(10)
            upstream.connect(self.target)
            upstream.settimeout(None)
        except OSError:
            client.close()
            upstream.close()
            return
        t = threading.Thread(target=_pipe, args=(upstream, client), daemon=True)
        t.start()
        _pipe(client, upstream)
        t.join(30)
        client.close()
        upstream.close()

    def close(self):
        self.running = False
        self.server.close()
        self.thread.join(2)


def _pipe(src, dst):
    try:
        while True:
            data = src.recv(16384)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)      # pass the end of stream on
        except OSError:
            pass
