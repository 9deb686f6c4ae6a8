"""The HTTP server's settings checked: HttpServer() imports this module for
the call and drops it after (uipy.run), so its code is in RAM only then."""


def check(stack, root, status, name, max_conns, header_limit, body_limit, request_timeout_ms,
          line_limit, keep_alive_ms, max_requests, chunk, chunks):
    """ValueError saying what is wrong and what is allowed."""
    for key, value, low in (("max_conns", max_conns, 1), ("header_limit", header_limit, 32),
                            ("body_limit", body_limit, 0), ("request_timeout_ms", request_timeout_ms, 1),
                            ("line_limit", line_limit, 16), ("keep_alive_ms", keep_alive_ms, 1),
                            ("max_requests", max_requests, 1), ("chunk", chunk, 64),
                            ("chunks", chunks, 1)):
        if not isinstance(value, int) or value < low:
            raise ValueError("uipy httpd: %s must be an int >= %d, got %r" % (key, low, value))
    if not isinstance(name, str) or not name or "\r" in name or "\n" in name:
        raise ValueError("uipy httpd: name must be a one-line string, got %r" % (name,))
    if not isinstance(root, str) or not root:
        raise ValueError("uipy httpd: root must be a directory name, got %r" % (root,))
    if status is not None and not callable(status):
        raise ValueError("uipy httpd: status must be a callable returning a dict")
    tcp = stack.tcp
    if tcp is None:
        raise ValueError("uipy httpd: the stack was made with tcp=False")
    if max_conns > len(tcp.conns):
        raise ValueError("uipy httpd: max_conns=%d exceeds the TCP table (tcp conns=%d)"
                         % (max_conns, len(tcp.conns)))
