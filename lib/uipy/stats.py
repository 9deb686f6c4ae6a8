"""Statistics counter names.  The stack keeps them in one dict made up front,
so counting never inserts a key (no allocation on the packet path)."""

NAMES = (
    # Ethernet and the driver
    "rx_frames", "tx_frames", "tx_errors", "drop_short", "drop_oversize",
    "drop_not_for_us", "drop_ethertype", "handler_errors",
    # ARP
    "arp_rx", "arp_tx", "arp_drop_bad", "arp_drop_not_for_us", "arp_unsolicited",
    "arp_learned", "arp_evicted", "arp_expired", "arp_miss", "arp_conflict", "arp_refresh",
    # IPv4
    "ip_rx", "ip_tx", "ip_drop_header", "ip_drop_checksum", "ip_drop_fragment",
    "ip_drop_not_for_us", "ip_drop_source", "ip_drop_proto", "ip_options_stripped",
    "ip_no_route",
    # ICMP
    "icmp_rx", "icmp_tx", "icmp_drop_short", "icmp_drop_checksum", "icmp_drop_type",
    "icmp_echo_rx", "icmp_echo_reply_rx", "icmp_unreach_rx", "icmp_unreach_tx",
    "icmp_unreach_limited",
    # UDP
    "udp_rx", "udp_tx", "udp_drop_header", "udp_drop_checksum", "udp_no_port",
    # TCP
    "tcp_rx", "tcp_tx", "tcp_drop_header", "tcp_drop_checksum", "tcp_drop_options",
    "tcp_drop_broadcast", "tcp_drop_unacceptable", "tcp_drop_no_ack", "tcp_out_of_order",
    "tcp_rst_rx", "tcp_rst_tx", "tcp_challenge_acks", "tcp_challenge_limited",
    "tcp_syn_backlog_full", "tcp_syn_table_full", "tcp_timewait_recycled",
    "tcp_retransmits", "tcp_fast_retransmits", "tcp_timeouts", "tcp_dup_acks",
    "tcp_window_probes", "tcp_keepalives", "tcp_connects", "tcp_accepts",
    "tcp_reorder_stored", "tcp_reorder_delivered",
)


def new_counters():
    d = {}
    for name in NAMES:
        d[name] = 0
    return d
