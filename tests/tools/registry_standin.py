#!/usr/bin/python3
"""A Schema Registry stand-in for tests (the real one is a Java service): serves
GET /schemas/ids/{id} from a folder of <id>.json files, with optional basic auth, and
GET /subjects (the ids of that folder as subject names).

  registry_standin.py --dir DIR [--port-file F] [--user U:P] [--fail-first N] [--status CODE]

--fail-first N answers the first N schema requests with 500; --status CODE answers every schema
request with CODE. GET /_requests lists the paths asked for so far (one per line). GET /_proxy404
makes every later schema request answered as a proxy with no route to the registry does: 404 with
an HTML page, not the registry's JSON error (no error_code 40403).
"""
import argparse
import base64
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

args = None
state = {"failed": 0, "requests": [], "proxy404": False}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def send(self, code, body, ctype="application/vnd.schemaregistry.v1+json"):
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/_requests":
            return self.send(200, "".join(p + "\n" for p in state["requests"]), "text/plain")
        if self.path == "/_proxy404":
            state["proxy404"] = True
            return self.send(200, "ok\n", "text/plain")
        state["requests"].append(self.path)
        if args.user:
            want = "Basic " + base64.b64encode(args.user.encode()).decode()
            if self.headers.get("Authorization") != want:
                return self.send(401, json.dumps({"error_code": 401, "message": "Unauthorized"}))
        if self.path == "/subjects":
            names = sorted(f[:-5] for f in os.listdir(args.dir) if f.endswith(".json"))
            return self.send(200, json.dumps(names))
        parts = self.path.strip("/").split("/")
        if len(parts) != 3 or parts[:2] != ["schemas", "ids"] or not parts[2].isdigit():
            return self.send(404, json.dumps({"error_code": 404, "message": "HTTP 404 Not Found"}))
        if state["proxy404"]:
            return self.send(404, "<html><head><title>404 Not Found</title></head><body><center><h1>404 Not Found"
                             "</h1></center><hr><center>nginx</center></body></html>", "text/html")
        if args.status:
            return self.send(args.status, json.dumps({"error_code": args.status, "message": "injected"}))
        if state["failed"] < args.fail_first:
            state["failed"] += 1
            return self.send(500, json.dumps({"error_code": 50001, "message": "injected failure"}))
        path = os.path.join(args.dir, "%s.json" % parts[2])
        if not os.path.exists(path):
            return self.send(404, json.dumps({"error_code": 40403, "message": "Schema %s not found" % parts[2]}))
        with open(path) as f:
            schema = json.load(f)
        self.send(200, json.dumps({"schema": json.dumps(schema)}))


def main():
    global args
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True)
    p.add_argument("--port-file")
    p.add_argument("--user")
    p.add_argument("--fail-first", type=int, default=0)
    p.add_argument("--status", type=int, default=0)
    args = p.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = srv.server_address[1]
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write("%d\n" % port)
        os.rename(args.port_file + ".tmp", args.port_file)
    print("PORT %d" % port, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
