#!/usr/bin/python3
"""A stand-in for an Amazon MSK broker with IAM access control, for tests: it speaks the Kafka
SASL handshake (ApiVersions, SaslHandshake for OAUTHBEARER, SaslAuthenticate with the client-first
message "n,,\\x01auth=Bearer <token>\\x01\\x01"), checks the token with botocore (the presigned
kafka-cluster:Connect URL recomputed with SigV4QueryAuth from the same credentials and X-Amz-Date
must be identical, the action, region and expiry right) and only then relays the connection to
the mock cluster; a bad token gets a SaslAuthenticate error and the connection is closed.

One listener per mock broker. The mock brokers advertise their own host:port in Metadata,
FindCoordinator and DescribeCluster answers; the stand-in rewrites those ports to its listeners
(same host, same length: no other byte changes), so clients never bypass it.

  msk_standin.py --bootstrap HOST:PORT,... --region R --port-file F --events F
                 [--key AKID:SECRET]... [--accept-standin-keys] [--max-session SECONDS]
                 [--refuse-client-id ID]... [--scram USER:PASSWORD]...

--scram: instead of OAUTHBEARER, SCRAM-SHA-256 and SCRAM-SHA-512 as a Kafka broker does them
(RFC 5802 over SaslAuthenticate, the stored keys derived from the password with a random salt
and 4096 iterations); a wrong password gets error 58 with the broker's words ("Authentication
failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256").

--accept-standin-keys: also accept the credentials tests/tools/aws_standin.py hands out
(ASIASTANDINnnnn / standin-secret-n). --max-session: close authenticated connections after
this long, so clients reconnect with their current token. --refuse-client-id: refuse the token of
a client whose requests carry this client.id, good or not (as a broker whose policy does not let
that principal connect). The port file gets "BOOTSTRAP host:port,..." once listening; each
authentication appends a JSON line to --events: {"ok", "akid", "date", "expires",
"session_token", "client_id", "reason"} (never a secret).
"""
import argparse
import base64
import datetime
import hashlib
import hmac
import json
import os
import re
import select
import socket
import struct
import sys
import threading
import time
from urllib.parse import parse_qs, urlsplit

API_METADATA, API_FIND_COORDINATOR, API_SASL_HANDSHAKE, API_API_VERSIONS = 3, 10, 17, 18
API_SASL_AUTHENTICATE, API_DESCRIBE_CLUSTER = 36, 60
ERR_UNSUPPORTED_SASL_MECHANISM, ERR_ILLEGAL_SASL_STATE, ERR_SASL_AUTHENTICATION_FAILED = 33, 34, 58
EXPIRES = 900
CLOCK_SKEW_S = 300


def reference_token(akid, secret, session_token, region, epoch, expires, user_agent):
    """The token the AWS MSK IAM signer libraries make, with botocore's SigV4QueryAuth."""
    from unittest import mock
    import botocore.auth
    from botocore.auth import SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    fixed = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).replace(tzinfo=None)
    if hasattr(botocore.auth, "get_current_datetime"):
        clock = mock.patch("botocore.auth.get_current_datetime", return_value=fixed)
    else:
        clock = mock.patch("botocore.auth.datetime", **{"datetime.utcnow.return_value": fixed})
    req = AWSRequest(method="GET", url="https://kafka.%s.amazonaws.com/" % region,
                     params={"Action": "kafka-cluster:Connect"})
    with clock:
        SigV4QueryAuth(Credentials(akid, secret, session_token), "kafka-cluster", region,
                       expires=expires).add_auth(req)
    url = "%s&User-Agent=%s" % (req.url, user_agent)
    return base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


def check_token(token, region, secrets, now=None):
    """Returns (ok, details): details has akid, date, expires, session_token and the reason."""
    d = {"akid": None, "date": None, "expires": None, "session_token": None, "reason": ""}
    try:
        url = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except Exception:
        d["reason"] = "token is not base64url"
        return False, d
    if "&User-Agent=" not in url:
        d["reason"] = "no User-Agent parameter"
        return False, d
    user_agent = url[url.rindex("&User-Agent=") + len("&User-Agent="):]
    parts = urlsplit(url)
    q = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    cred = q.get("X-Amz-Credential", "").split("/")
    d.update(akid=cred[0] if cred else None, date=q.get("X-Amz-Date"), expires=q.get("X-Amz-Expires"),
             session_token=q.get("X-Amz-Security-Token"))
    if parts.scheme != "https" or parts.netloc != "kafka.%s.amazonaws.com" % region or parts.path != "/":
        d["reason"] = "not a request to kafka.%s.amazonaws.com" % region
    elif q.get("Action") != "kafka-cluster:Connect":
        d["reason"] = "action is not kafka-cluster:Connect"
    elif len(cred) != 5 or cred[2] != region or cred[3] != "kafka-cluster" or cred[4] != "aws4_request":
        d["reason"] = "credential scope is not %s/kafka-cluster" % region
    elif cred[0] not in secrets:
        d["reason"] = "unknown access key"
    elif q.get("X-Amz-Expires") != str(EXPIRES):
        d["reason"] = "X-Amz-Expires is not %d" % EXPIRES
    if d["reason"]:
        return False, d
    try:
        signed = datetime.datetime.strptime(q["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
    except (KeyError, ValueError):
        d["reason"] = "bad X-Amz-Date"
        return False, d
    epoch = int(signed.timestamp())
    now = time.time() if now is None else now
    if now > epoch + EXPIRES:
        d["reason"] = "token expired"
    elif epoch > now + CLOCK_SKEW_S:
        d["reason"] = "token signed in the future"
    elif cred[1] != q["X-Amz-Date"][:8]:
        d["reason"] = "credential date is not the signing date"
    elif reference_token(cred[0], secrets[cred[0]], q.get("X-Amz-Security-Token"), region, epoch, EXPIRES,
                         user_agent) != token:
        d["reason"] = "signature does not match"
    return not d["reason"], d


# ---- Kafka framing -------------------------------------------------------------------------

def read_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def read_frame(sock):
    (size,) = struct.unpack(">i", read_exact(sock, 4))
    return read_exact(sock, size)


def send_frame(sock, payload):
    sock.sendall(struct.pack(">i", len(payload)) + payload)


def kstring(b, off):
    (n,) = struct.unpack_from(">h", b, off)
    return (None if n < 0 else b[off + 2:off + 2 + n].decode()), off + 2 + max(n, 0)


def request_header(frame):
    """(api_key, api_version, correlation_id, body offset, client_id) of a header v1 request (the
    requests read here before authentication are not flexible)."""
    key, ver, corr = struct.unpack_from(">hhi", frame, 0)
    client_id, off = kstring(frame, 8)
    return key, ver, corr, off, client_id


def enc_string(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def uvarint(b, off):
    shift = value = 0
    while True:
        c = b[off]
        off += 1
        value |= (c & 0x7F) << shift
        if not c & 0x80:
            return value, off
        shift += 7


def enc_uvarint(v):
    out = b""
    while v >= 0x80:
        out += bytes([(v & 0x7F) | 0x80])
        v >>= 7
    return out + bytes([v])


def skip_tags(b, off):
    n, off = uvarint(b, off)
    for _ in range(n):
        _, off = uvarint(b, off)
        size, off = uvarint(b, off)
        off += size
    return off


def add_sasl_apis(frame, version):
    """The mock cluster's ApiVersions answer with SaslHandshake v0-1 and SaslAuthenticate v0-1,
    which this stand-in answers itself (the mock's own list does not have them)."""
    corr, err = struct.unpack_from(">ih", frame, 0)
    if err:
        return frame
    off, apis = 6, []
    flexible = version >= 3
    if flexible:
        n, off = uvarint(frame, off)
        n -= 1
    else:
        (n,) = struct.unpack_from(">i", frame, off)
        off += 4
    for _ in range(n):
        apis.append(struct.unpack_from(">hhh", frame, off))
        off += 6
        if flexible:
            off = skip_tags(frame, off)
    apis = [a for a in apis if a[0] not in (API_SASL_HANDSHAKE, API_SASL_AUTHENTICATE)]
    apis += [(API_SASL_HANDSHAKE, 0, 1), (API_SASL_AUTHENTICATE, 0, 1)]
    out = struct.pack(">ih", corr, err)
    out += enc_uvarint(len(apis) + 1) if flexible else struct.pack(">i", len(apis))
    for a in apis:
        out += struct.pack(">hhh", *a) + (b"\x00" if flexible else b"")
    return out + frame[off:]


class Standin:
    def __init__(self, args):
        self.args = args
        self.secrets = dict(k.split(":", 1) for k in args.key)
        self.scram_users = dict(k.split(":", 1) for k in args.scram)
        self.lock = threading.Lock()
        self.upstreams = []
        for hp in args.bootstrap.split(","):
            host, port = hp.rsplit(":", 1)
            self.upstreams.append((host, int(port)))
        self.listeners = []
        for host, _ in self.upstreams:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, 0))
            s.listen(64)
            self.listeners.append(s)
        self.port_map = {}  # (host bytes + upstream port) -> (host bytes + our port)
        for (host, port), s in zip(self.upstreams, self.listeners):
            h = host.encode()
            self.port_map[h + struct.pack(">i", port)] = h + struct.pack(">i", s.getsockname()[1])

    def secret_of(self, akid):
        if akid in self.secrets:
            return self.secrets[akid]
        m = re.fullmatch(r"ASIASTANDIN(\d{4})", akid or "")
        if self.args.accept_standin_keys and m:
            return "standin-secret-%d" % int(m.group(1))
        return None

    def event(self, ok, d):
        line = json.dumps(dict(d, ok=ok)) + "\n"
        with self.lock, open(self.args.events, "a") as f:
            f.write(line)

    def rewrite(self, frame):
        for old, new in self.port_map.items():
            frame = frame.replace(old, new)
        return frame

    def serve(self):
        for i, s in enumerate(self.listeners):
            threading.Thread(target=self.accept_loop, args=(s, self.upstreams[i]), daemon=True).start()
        with open(self.args.port_file + ".tmp", "w") as f:
            f.write("BOOTSTRAP %s\n" % ",".join("%s:%d" % s.getsockname() for s in self.listeners))
        os.rename(self.args.port_file + ".tmp", self.args.port_file)
        threading.Event().wait()

    def accept_loop(self, lsock, upstream):
        while True:
            conn, _ = lsock.accept()
            threading.Thread(target=self.connection, args=(conn, upstream), daemon=True).start()

    def scram(self, client, mechanism, corr, ver, first, client_id):
        """RFC 5802, the server side, as Kafka's ScramSaslServer: client-first, server-first,
        client-final (proof checked against the stored key), server-final. True when it matched."""
        h = hashlib.sha256 if mechanism == "SCRAM-SHA-256" else hashlib.sha512

        def reply(c, err, msg, data):
            out = struct.pack(">ih", c, err) + (enc_string(msg) if err else struct.pack(">h", -1))
            out += struct.pack(">i", len(data)) + data
            send_frame(client, out + (struct.pack(">q", 0) if ver >= 1 else b""))

        refused = "Authentication failed during authentication due to invalid credentials with SASL mechanism " + mechanism
        m = re.fullmatch(r"n,[^,]*,(n=([^,]*),r=([^,]*)(?:,.*)?)", first)
        if not m or m.group(2) not in self.scram_users:
            self.event(False, {"mechanism": mechanism, "user": m and m.group(2), "client_id": client_id,
                               "reason": "unknown user"})
            reply(corr, ERR_SASL_AUTHENTICATION_FAILED, refused, b"")
            return False
        bare, user, cnonce = m.groups()
        salt, iterations = os.urandom(16), 4096
        salted = hashlib.pbkdf2_hmac(h().name, self.scram_users[user].encode(), salt, iterations)
        stored = h(hmac.new(salted, b"Client Key", h).digest()).digest()
        server_first = "r=%s%s,s=%s,i=%d" % (cnonce, base64.b64encode(os.urandom(18)).decode(),
                                            base64.b64encode(salt).decode(), iterations)
        reply(corr, 0, "", server_first.encode())
        frame = read_frame(client)
        key, ver, corr, off, _ = request_header(frame)
        (n,) = struct.unpack_from(">i", frame, off)
        final = frame[off + 4:off + 4 + n].decode("utf-8", "replace")
        without_proof, _, proof = final.rpartition(",p=")
        auth_msg = ("%s,%s,%s" % (bare, server_first, without_proof)).encode()
        signature = hmac.new(stored, auth_msg, h).digest()
        try:
            client_key = bytes(a ^ b for a, b in zip(base64.b64decode(proof), signature))
            ok = key == API_SASL_AUTHENTICATE and hmac.compare_digest(h(client_key).digest(), stored)
        except ValueError:
            ok = False
        self.event(ok, {"mechanism": mechanism, "user": user, "client_id": client_id,
                        "reason": "" if ok else "wrong password"})
        if not ok:
            reply(corr, ERR_SASL_AUTHENTICATION_FAILED, refused, b"")
            return False
        server_key = hmac.new(salted, b"Server Key", h).digest()
        reply(corr, 0, "", b"v=" + base64.b64encode(hmac.new(server_key, auth_msg, h).digest()))
        return True

    def authenticate(self, client, up):
        """The handshake; True once a good token (or SCRAM proof) was presented."""
        mechanism = None
        offered = ["SCRAM-SHA-256", "SCRAM-SHA-512"] if self.scram_users else ["OAUTHBEARER"]
        while True:
            frame = read_frame(client)
            key, ver, corr, off, client_id = request_header(frame)
            if key == API_API_VERSIONS:
                send_frame(up, frame)
                send_frame(client, add_sasl_apis(read_frame(up), ver))
            elif key == API_SASL_HANDSHAKE:
                mechanism, _ = kstring(frame, off)
                err = 0 if mechanism in offered else ERR_UNSUPPORTED_SASL_MECHANISM
                send_frame(client, struct.pack(">ihi", corr, err, len(offered)) +
                           b"".join(enc_string(o) for o in offered))
                if err:
                    return False
            elif key == API_SASL_AUTHENTICATE and mechanism in offered and mechanism != "OAUTHBEARER":
                (n,) = struct.unpack_from(">i", frame, off)
                return self.scram(client, mechanism, corr, ver, frame[off + 4:off + 4 + n].decode("utf-8", "replace"),
                                  client_id)
            elif key == API_SASL_AUTHENTICATE and mechanism == "OAUTHBEARER" and ver <= 1:
                (n,) = struct.unpack_from(">i", frame, off)
                msg = frame[off + 4:off + 4 + n].decode("utf-8", "replace")
                m = re.fullmatch(r"n,[^,]*,\x01auth=Bearer ([^\x01]*)\x01(?:[^\x01]*\x01)*\x01", msg)
                ok, d = False, {"reason": "not an OAUTHBEARER client-first message"}
                if m:
                    akid = None
                    try:
                        akid = base64.urlsafe_b64decode(m.group(1) + "=" * (-len(m.group(1)) % 4)).decode()
                        akid = parse_qs(urlsplit(akid).query).get("X-Amz-Credential", [""])[0].split("/")[0]
                    except Exception:
                        pass
                    secret = self.secret_of(akid)
                    ok, d = check_token(m.group(1), self.args.region, {akid: secret} if secret else {})
                if ok and client_id in self.args.refuse_client_id:
                    ok, d["reason"] = False, "client.id %s may not connect" % client_id
                d["client_id"] = client_id
                self.event(ok, d)
                err = 0 if ok else ERR_SASL_AUTHENTICATION_FAILED
                reply = struct.pack(">ih", corr, err)
                reply += enc_string("IAM authentication failed: %s" % d["reason"]) if err else struct.pack(">h", -1)
                reply += struct.pack(">i", 0)
                if ver >= 1:
                    reply += struct.pack(">q", 0)
                send_frame(client, reply)
                return ok
            else:
                # Nothing else before authentication (as a broker with IAM access control).
                send_frame(client, struct.pack(">ih", corr, ERR_ILLEGAL_SASL_STATE))
                return False

    def connection(self, client, upstream):
        up = None
        try:
            up = socket.create_connection(upstream)
            if not self.authenticate(client, up):
                return
            pending = {}
            done = threading.Event()
            threading.Thread(target=self.responses, args=(up, client, pending, done), daemon=True).start()
            if self.args.max_session:
                threading.Timer(self.args.max_session, done.set).start()
            while not done.is_set():
                if not select.select([client], [], [], 0.2)[0]:
                    continue
                frame = read_frame(client)
                key, _, corr = struct.unpack_from(">hhi", frame, 0)
                pending[corr] = key
                send_frame(up, frame)
        except (EOFError, OSError):
            pass
        finally:
            for s in (client, up):
                if s:
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    s.close()

    def responses(self, up, client, pending, done):
        try:
            while not done.is_set():
                frame = read_frame(up)
                (corr,) = struct.unpack_from(">i", frame, 0)
                if pending.pop(corr, None) in (API_METADATA, API_FIND_COORDINATOR, API_DESCRIBE_CLUSTER):
                    frame = self.rewrite(frame)
                send_frame(client, frame)
        except (EOFError, OSError):
            pass
        done.set()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--region", required=True)
    p.add_argument("--port-file", required=True)
    p.add_argument("--events", required=True)
    p.add_argument("--key", action="append", default=[])
    p.add_argument("--accept-standin-keys", action="store_true")
    p.add_argument("--max-session", type=float, default=0)
    p.add_argument("--refuse-client-id", action="append", default=[])
    p.add_argument("--scram", action="append", default=[])
    Standin(p.parse_args()).serve()


if __name__ == "__main__":
    sys.exit(main())
