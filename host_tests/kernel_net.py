"""The end-to-end test bed: a network namespace whose kernel sits on one end of
a TAP (or veth) at KERNEL_IP, and the NIC for a uipy stack on the other end,
optionally captured to a pcap file, wrapped (fault injector) or put behind an
emulated chip on the virtual board.  start() runs the stack in a StackThread.

    net = KernelNet(pcap_path=path)
    net.start(lambda nic: Stack(nic, ip=STACK_IP, gateway=KERNEL_IP))
    ...
    net.close()                      # thread, capture file and namespace
"""
KERNEL_IP = "198.18.0.1"
STACK_IP = "198.18.0.2"


class KernelNet:
    def __init__(self, link="tap", chip=None, pcap_path=None, wrap=None):
        from netns import Namespace, create_tap_in_ns, create_veth_in_ns

        self.ns = Namespace().create()
        self.writer = self.thread = self.stack = None
        self.pcap_path = pcap_path
        try:
            make = create_tap_in_ns if link == "tap" else create_veth_in_ns
            self.link = self.tap = make(self.ns, KERNEL_IP + "/24")
            nic = self.link
            if pcap_path is not None:
                from pcap import CaptureLink, PcapWriter
                self.writer = PcapWriter(pcap_path)
                nic = CaptureLink(nic, self.writer)      # the wire, as the kernel sees it
            if chip is not None:
                import boards
                nic = boards.nic("virtual", chip=chip, tap=nic)
            self.nic = wrap(nic) if wrap else nic
        except BaseException:
            self.close()
            raise

    def start(self, build, idle_s=0.005):
        """stack = build(nic), then run it in a thread; cleans up if either fails."""
        from hostrun import StackThread
        try:
            self.stack = build(self.nic)
            self.thread = StackThread(self.stack, self.nic, idle_s=idle_s).start()
        except BaseException:
            self.close()
            raise
        return self

    def call(self, fn, timeout=5.0):
        return self.thread.call(fn, timeout)

    def stats(self):
        return self.call(lambda s: dict(s.stats))

    def flush_capture(self):
        self.call(lambda s: self.writer.flush())

    def close(self):
        try:
            if self.thread is not None:
                self.thread.stop()
        finally:
            if self.writer is not None:
                self.writer.close()
            self.ns.delete()
