#!/usr/bin/python3
"""Transport stand-ins for the writer's tests, on loopback, standard library only.

  proxy --port-file F --log L
      An HTTP forward proxy: absolute-URI requests (http:// targets) are forwarded with their
      headers untouched (the SigV4 signature covers Host) and CONNECT opens a tunnel (https://
      targets). Each request is logged as one line: "<METHOD> <target> <X-Amz-Target or ->".

  tls --port-file F --cert C --key K --upstream HOST:PORT
      A TLS terminator: accepts TLS with the given certificate and relays the plain bytes to
      HOST:PORT (the emulator's plain port), so a private CA can be tested end to end.

The port is written to --port-file once the socket listens.
"""
import argparse
import os
import http.client
import http.server
import socket
import socketserver
import ssl
import sys
import threading

HOP_BY_HOP = {"proxy-connection", "proxy-authorization", "connection", "keep-alive"}


def relay(a, b):
    """Copy bytes both ways between sockets a and b until either side closes."""
    def pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    t = threading.Thread(target=pump, args=(b, a), daemon=True)
    t.start()
    pump(a, b)
    t.join()


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    log_lock = threading.Lock()

    def log_message(self, *args):
        pass

    def note(self):
        with self.log_lock, open(self.server.log_path, "a") as f:
            f.write("%s %s %s\n" % (self.command, self.path, self.headers.get("X-Amz-Target", "-")))

    def do_CONNECT(self):
        self.note()
        host, _, port = self.path.rpartition(":")
        try:
            up = socket.create_connection((host, int(port)), timeout=10)
        except OSError as e:
            self.send_error(502, "cannot connect to %s: %s" % (self.path, e))
            return
        self.send_response(200, "Connection established")
        self.end_headers()
        self.close_connection = True
        up.settimeout(None)
        relay(self.connection, up)
        up.close()

    def forward(self):
        self.note()
        if not self.path.startswith("http://"):
            self.send_error(400, "a forward proxy needs an absolute http:// URI")
            return
        rest = self.path[len("http://"):]
        hostport, slash, path = rest.partition("/")
        host, _, port = hostport.partition(":")
        body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
        up = http.client.HTTPConnection(host, int(port or 80), timeout=30)
        try:
            up.putrequest(self.command, slash + path, skip_host=True, skip_accept_encoding=True)
            for k, v in self.headers.items():
                if k.lower() not in HOP_BY_HOP:
                    up.putheader(k, v)
            up.endheaders(body)
            r = up.getresponse()
            data = r.read()
        except OSError as e:
            self.send_error(502, "upstream %s: %s" % (hostport, e))
            return
        finally:
            up.close()
        self.send_response(r.status, r.reason)
        for k, v in r.getheaders():
            if k.lower() not in HOP_BY_HOP and k.lower() not in ("content-length", "transfer-encoding"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = forward


class TlsRelay(socketserver.BaseRequestHandler):
    def handle(self):
        try:
            tls = self.server.ctx.wrap_socket(self.request, server_side=True)
        except (ssl.SSLError, OSError):
            return  # the client refused our certificate: that is the negative test
        try:
            up = socket.create_connection(self.server.upstream, timeout=10)
        except OSError:
            tls.close()
            return
        up.settimeout(None)
        relay(tls, up)
        up.close()
        tls.close()


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


class TcpServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=("proxy", "tls"))
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--upstream")
    a = ap.parse_args()
    if a.mode == "proxy":
        srv = Server(("127.0.0.1", 0), Proxy)
        srv.log_path = a.log
        open(a.log, "w").close()
    else:
        srv = TcpServer(("127.0.0.1", 0), TlsRelay)
        srv.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        srv.ctx.load_cert_chain(a.cert, a.key)
        host, _, port = a.upstream.rpartition(":")
        srv.upstream = (host, int(port))
    with open(a.port_file + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(a.port_file + ".tmp", a.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
