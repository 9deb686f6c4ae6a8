"""The DNS resolver's settings checked, and its errors for bad names:
uipy.dns imports this module for the call and drops it after (uipy.run), so
its code is in RAM only then."""
from uipy.ipv4 import ip_bytes


def check(servers, cache_size, timeout_ms, retries, min_ttl_s, max_ttl_s, max_pending):
    """ValueError saying what is wrong and what is allowed; the servers as
    4-byte addresses (None stays None: the stack's, read at each attempt)."""
    for what, value in (("cache_size", cache_size), ("max_pending", max_pending),
                        ("timeout_ms", timeout_ms)):
        if not isinstance(value, int) or value < 1:
            raise ValueError("uipy: Resolver %s must be a positive int, got %r" % (what, value))
    if not isinstance(retries, int) or retries < 0:
        raise ValueError("uipy: Resolver retries must be an int >= 0, got %r" % (retries,))
    if not isinstance(max_ttl_s, int) or not 0 < max_ttl_s <= 500000:
        raise ValueError("uipy: Resolver max_ttl_s must be 1..500000 (ticks wrap), got %r"
                         % (max_ttl_s,))
    if not isinstance(min_ttl_s, int) or not 0 <= min_ttl_s <= max_ttl_s:
        raise ValueError("uipy: Resolver min_ttl_s must be 0..max_ttl_s, got %r" % (min_ttl_s,))
    return None if servers is None else [ip_bytes(s, "DNS server") for s in servers]


def name_error(name, why):
    """encode_name's ValueError for name, by the check it failed (0-3)."""
    return ValueError(("uipy: DNS name must be a str, got %r",
                       "uipy: bad DNS name %r (empty label or one over 63 chars)",
                       "uipy: bad DNS name %r (only printable ASCII)",
                       "uipy: DNS name %r is over 255 bytes")[why] % (name,))
