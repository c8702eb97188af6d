#!/usr/bin/python3
"""What the HTTP stand-ins of the tests share (tests/tools/aws_standin.py, glue_standin.py):
serve(handler, port_file) serves a BaseHTTPRequestHandler class on a free loopback port, one
thread a connection, and writes that port to port_file (when given) for the test to read: to a
temporary file renamed into place, so the test never reads half of it."""
import os
from http.server import ThreadingHTTPServer


def serve(handler, port_file):
    """Serve handler on 127.0.0.1, a port of the system's choosing written to port_file, until killed."""
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if port_file:
        with open(port_file + ".tmp", "w") as f:
            f.write("%d\n" % srv.server_address[1])
        os.rename(port_file + ".tmp", port_file)
    srv.serve_forever()
