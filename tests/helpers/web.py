"""A throwaway HTTP server on the host's loopback only, for guests to reach
through their provider's NAT and uplink (10.0.2.2 from the uplink)."""
import contextlib
import functools
import http.server
import threading


@contextlib.contextmanager
def loopback_server(root, files):
    """Serve root (after writing files: {name: text}); yields the port."""
    for name, text in files.items():
        (root / name).write_text(text)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler,
                                directory=str(root))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield srv.server_address[1]
    finally:
        srv.shutdown()
