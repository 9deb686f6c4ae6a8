"""Statistics counters.  The stack keeps them in one dict made up front, so
counting never inserts a key (no allocation on the packet path).  TCP's names
live in uipy.tcp and join the dict only when TCP is loaded.

The stack's names are written as keyword arguments, not as a tuple of
strings: a name in the source is interned when the module loads (a qstr:
its bytes and about 8 more), where a string constant over 10 characters is a
heap object of 32-48 bytes, in this module and again in every module that
counts under that name.  So each module that counts also writes its names
over 10 characters as names, in a block the compiler drops (`if _TYPING:
dict(arp_evicted=0, ...)`): the compiler then interns its strings, and the
module holds qstrs shared with the dict's keys, no strings of its own.
"""


def new_counters(names=None, d=None):
    """A dict of zeroed counters: the stack's own, or names added to d."""
    if names is None:
        return dict(
            # Ethernet and the driver
            rx_frames=0, tx_frames=0, tx_errors=0, drop_short=0, drop_oversize=0,
            drop_not_for_us=0, drop_ethertype=0, handler_errors=0,
            # ARP
            arp_rx=0, arp_tx=0, arp_drop_bad=0, arp_drop_not_for_us=0, arp_unsolicited=0,
            arp_learned=0, arp_evicted=0, arp_expired=0, arp_miss=0, arp_conflict=0, arp_refresh=0,
            arp_updated=0, arp_defended=0,
            # IPv4
            ip_rx=0, ip_tx=0, ip_drop_header=0, ip_drop_checksum=0, ip_drop_fragment=0,
            ip_drop_not_for_us=0, ip_drop_source=0, ip_drop_proto=0, ip_options_stripped=0,
            ip_no_route=0, ip_drop_link_broadcast=0,
            # ICMP
            icmp_rx=0, icmp_tx=0, icmp_drop_short=0, icmp_drop_checksum=0, icmp_drop_type=0,
            icmp_echo_rx=0, icmp_echo_reply_rx=0, icmp_unreach_rx=0, icmp_unreach_tx=0,
            icmp_unreach_limited=0,
            # UDP
            udp_rx=0, udp_tx=0, udp_drop_header=0, udp_drop_checksum=0, udp_no_port=0)
    if d is None:
        d = {}
    for name in names:
        d[name] = 0
    return d
