"""Statistics counter names.  The stack keeps them in one dict made up front,
so counting never inserts a key (no allocation on the packet path).  TCP's
names live in uipy.tcp and join the dict only when TCP is loaded."""

NAMES = (
    # Ethernet and the driver
    "rx_frames", "tx_frames", "tx_errors", "drop_short", "drop_oversize",
    "drop_not_for_us", "drop_ethertype", "handler_errors",
    # ARP
    "arp_rx", "arp_tx", "arp_drop_bad", "arp_drop_not_for_us", "arp_unsolicited",
    "arp_learned", "arp_evicted", "arp_expired", "arp_miss", "arp_conflict", "arp_refresh",
    "arp_updated", "arp_defended",
    # IPv4
    "ip_rx", "ip_tx", "ip_drop_header", "ip_drop_checksum", "ip_drop_fragment",
    "ip_drop_not_for_us", "ip_drop_source", "ip_drop_proto", "ip_options_stripped",
    "ip_no_route", "ip_drop_link_broadcast",
    # ICMP
    "icmp_rx", "icmp_tx", "icmp_drop_short", "icmp_drop_checksum", "icmp_drop_type",
    "icmp_echo_rx", "icmp_echo_reply_rx", "icmp_unreach_rx", "icmp_unreach_tx",
    "icmp_unreach_limited",
    # UDP
    "udp_rx", "udp_tx", "udp_drop_header", "udp_drop_checksum", "udp_no_port",
)


def new_counters(names=NAMES, d=None):
    """A dict of zeroed counters (or names added to d)."""
    if d is None:
        d = {}
    for name in names:
        d[name] = 0
    return d
