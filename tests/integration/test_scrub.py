"""No secret leaves the process, even when a peer echoes it back: peers that quote the request they
received (tests/tools/echo_standin.py: Kinesis as on a signature mismatch, STS, a Schema Registry,
the IAM Identity Center portal and SSO OIDC), one run per output channel (--check --connect lines,
log lines at debug level, --preview and its exit message, dead-letter headers, /metrics labels),
and a debug-level run with STS credentials, MSK IAM and a registry password. Everything printed is
scanned for every secret and token: raw, percent-encoded, base64 and base64url (at each byte
alignment, of the value and of its percent-encoded form), a Basic header, and any prefix of one
longer than 8 characters.

Each test fails on the defect it names: with the scrubber bypassed (ks_scrub_buf copying the text,
ks_scrub_str leaving it) every test but the signature-error one fails; that one fails when the
canonical request is kept (aws.c); without the registration in ks_creds_set the debug-level run
fails (the STS session token), without the SSO tokens' registration the SSO test fails."""
import base64
import hashlib
import json
import os
import signal
import subprocess
import sys
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import (KINESINK, SRCDIR, Kinesink, MockCluster, Peer, Registry, Standin, config_text,  # noqa: E402
                     free_port, http_get, main, run_kinesink, wait_for)

AVRO = os.path.join(SRCDIR, "tests", "data", "avro")
ROLE = "arn:aws:iam::111122223333:role/writer"


def token(nbytes):
    """A random secret as AWS's look: base64 text, '+', '/' and '=' included."""
    while True:
        t = base64.b64encode(os.urandom(nbytes)).decode()
        if "+" in t and "/" in t:
            return t


class Secrets:
    def __init__(self):
        self.base_akid, self.base_secret, self.base_token = "AKIAECHOBASE0001", token(30), token(300)
        self.sts_akid, self.sts_secret, self.sts_token = "ASIAECHOSTS00001", token(30), token(420)
        self.reg_user, self.reg_pass, self.url_pass = "reader", "Reg+Pa55/" + token(9), "url:P@ss/" + token(9)
        self.sso_access, self.sso_refresh, self.client_secret = token(60), token(90), token(45)

    def all(self):
        return [self.base_secret, self.base_token, self.sts_secret, self.sts_token, self.reg_pass, self.url_pass,
                "%s:%s" % (self.reg_user, self.reg_pass), self.sso_access, self.sso_refresh, self.client_secret]

    def issue(self):
        return "%s:%s:%s" % (self.sts_akid, self.sts_secret, self.sts_token)


def forms(s):
    """Every form of s to look for: raw, percent-encoded (also as a form), base64 and base64url of
    the value and of its percent-encoded form at each byte alignment (the characters only s
    determines), the whole base64 (a Basic header's)."""
    pct = urllib.parse.quote(s, safe="-_.~")
    out = {s, pct, urllib.parse.quote_plus(s, safe="-_.~"), base64.b64encode(s.encode()).decode()}
    for v in (s.encode(), pct.encode()):
        for a in range(3):
            for enc in (base64.b64encode, base64.urlsafe_b64encode):
                e = enc(b"\0" * a + v).decode()
                out.add(e[(8 * a + 5) // 6:(a + len(v)) * 8 // 6])
    return {f for f in out if len(f) >= 8}


def leaks(text, secrets):
    """(secret's first characters, form's first characters) of every form whose first 9 characters
    (the whole form when shorter) appear in text: no prefix longer than 8 characters may."""
    return [(s[:4] + "...", f[:12] + "...") for s in secrets for f in forms(s) if f[:9] in text]


def echo(tmp, sec, *roles, schemas=None):
    args = ["--issue", sec.issue()] + [x for r in roles for x in ("--echo", r)]
    if schemas:
        args += ["--schemas", schemas]
    return Standin(tmp, "echo_standin.py", "echo", *args)


def echoed(peer):
    return json.loads(http_get(peer.url + "/_echoed")[1] or "[]")


def conf_for(cluster, endpoint, sec, **extra):
    conf = {"stream": "s1", "aws.region": "us-east-1", "endpoint": endpoint, "topic": "t",
            "aws.credentials.access_key_id": sec.base_akid, "aws.credentials.secret_access_key": sec.base_secret,
            "aws.credentials.session_token": sec.base_token, "kafka.bootstrap.servers": cluster.bootstrap,
            "kafka.session.timeout.ms": "6000", "metrics.listen": "off", "batch.linger.ms": "20",
            "offsets.commit.interval.ms": "200", "type": "append-only", "input.format": "json"}
    conf.update({k.replace("__", "."): v for k, v in extra.items()})
    return conf


def env_without_aws(tmp, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"HOME": tmp.path, "AWS_EC2_METADATA_DISABLED": "true"})
    env.update(extra)
    return env


def connect(tmp, conf, env):
    path = tmp.file("connect.conf", config_text(conf))
    p = subprocess.run([KINESINK, "-c", path, "--check", "--connect"], env=env, capture_output=True, text=True,
                       timeout=120)
    return p.returncode, p.stdout, p.stderr


def offered(peer, value):
    """The peer did quote value (raw or percent-encoded) in an error: the test is not vacuous."""
    texts = "\n".join(echoed(peer))
    assert value in texts or urllib.parse.quote(value, safe="-_.~") in texts, texts[:2000]


def test_connect_sts_and_registry_echo(tmp):
    """--check --connect: STS refuses the AssumeRole quoting its headers (the session token of the
    base credentials) and body; the registry (its URL with a password) refuses quoting the Basic
    header."""
    sec = Secrets()
    cluster = MockCluster(tmp, topics={"t": 1})
    peer = echo(tmp, sec, "sts", "registry")
    reg_url = "http://%s:%s@127.0.0.1:%d" % ("urluser", urllib.parse.quote(sec.url_pass, safe=""), peer.port)
    conf = conf_for(cluster, peer.url, sec, **{"aws.credentials.role.arn": ROLE, "input.format": "debezium-avro",
                                               "type": "debezium",
                                               "schema.registry.url": reg_url, "schema.registry.username": sec.reg_user,
                                               "schema.registry.password": sec.reg_pass})
    rc, out, err = connect(tmp, conf, env_without_aws(tmp, AWS_ENDPOINT_URL_STS=peer.url))
    assert rc == 1, out + err
    cred = [line for line in out.splitlines() if line.startswith("FAIL credentials: ")]
    assert cred and "AccessDenied" in cred[0] and "x-amz-security-token: [redacted]" in cred[0].lower(), out
    offered(peer, sec.base_token)
    offered(peer, base64.b64encode(("%s:%s" % (sec.reg_user, sec.reg_pass)).encode()).decode())
    assert leaks(out + err, sec.all()) == [], (leaks(out + err, sec.all()), out + err)


def test_connect_kinesis_signature_error(tmp):
    """At the default level a refused signature says the service's first sentence, the request id
    and what to check; the canonical request and string to sign it echoes are not printed."""
    sec = Secrets()
    cluster = MockCluster(tmp, topics={"t": 1})
    peer = echo(tmp, sec, "kinesis")
    rc, out, err = connect(tmp, conf_for(cluster, peer.url, sec), env_without_aws(tmp))
    assert rc == 1, out + err
    line = [x for x in out.splitlines() if x.startswith("FAIL kinesis: ")]
    assert line, out
    assert "HTTP 400 InvalidSignatureException: The request signature we calculated does not match the signature " \
           "you provided. (kinesink: check the AWS secret access key, the region aws.region and this machine's " \
           "clock) (AWS request id echo-request-" in line[0], line[0]
    assert "Canonical String" not in out + err and "String-to-Sign" not in out + err, out + err
    offered(peer, sec.base_token)
    assert leaks(out + err, sec.all()) == [], (leaks(out + err, sec.all()), out + err)


def test_debug_log_kinesis_signature_echo(tmp):
    """Log lines at debug level carry the whole signature error, the echoed canonical request with
    its X-Amz-Security-Token included: scrubbed. The run stops with exit 1."""
    sec = Secrets()
    cluster = MockCluster(tmp, topics={"t": 1})
    cluster.produce("t", [("k", json.dumps({"id": 1}), 0)])
    peer = echo(tmp, sec, "kinesis")
    rc, log = run_kinesink(tmp, conf_for(cluster, peer.url, sec, **{"log.level": "debug"}))
    assert rc == 1, log[-3000:]
    assert "The Canonical String for this request should have been" in log, log[-3000:]
    assert "x-amz-security-token:[redacted]" in log, log[-3000:]
    offered(peer, sec.base_token)
    assert leaks(log, sec.all()) == [], (leaks(log, sec.all()), log[-3000:])


def test_preview_registry_url_password(tmp):
    """--preview: the registry refuses (quoting the Basic header); what is printed, on standard
    output and in the exit message, names the registry's URL, whose password is scrubbed."""
    sec = Secrets()
    cluster = MockCluster(tmp, topics={"t": 1})
    with open(os.path.join(AVRO, "insert", "value.bin"), "rb") as f:
        cluster.produce("t", [(None, f.read(), 0)])
    peer = echo(tmp, sec, "registry")
    reg_url = "http://%s:%s@127.0.0.1:%d" % ("urluser", urllib.parse.quote(sec.url_pass, safe=""), peer.port)
    conf = conf_for(cluster, peer.url, sec, **{"input.format": "debezium-avro", "schema.registry.url": reg_url,
                                               "schema.registry.username": sec.reg_user,
                                               "schema.registry.password": sec.reg_pass, "type": "debezium"})
    path = tmp.file("preview.conf", config_text(conf))
    p = subprocess.run([KINESINK, "-c", path, "--preview", "1", "--from-beginning"], env=env_without_aws(tmp),
                       capture_output=True, text=True, timeout=120)
    text = p.stdout + p.stderr
    assert "http://urluser:[redacted]@127.0.0.1:%d" % peer.port in text, text[-3000:]
    offered(peer, base64.b64encode(("%s:%s" % (sec.reg_user, sec.reg_pass)).encode()).decode())
    assert leaks(text, sec.all()) == [], (leaks(text, sec.all()), text[-3000:])


def test_dead_letter_header(tmp):
    """A bad record's error text quotes what the record holds (here an op that echoes the secret
    key): the dead letter's kinesink.error.message header, and the log, carry it scrubbed."""
    sec = Secrets()
    cluster = MockCluster(tmp, topics={"t": 1, "dlq": 1})
    bad = json.dumps({"payload": {"op": sec.base_secret, "after": {"id": 1}}})
    good = json.dumps({"payload": {"op": "c", "after": {"id": 2}}})
    cluster.produce("t", [("1", bad, 0), ("2", good, 0)])
    peer = echo(tmp, sec)
    conf = conf_for(cluster, peer.url, sec, **{"input.format": "debezium-json", "type": "debezium", "primary_key": "id", "errors.policy": "dlq",
                                               "errors.dlq.topic": "dlq"})
    rc, log = run_kinesink(tmp, conf)
    assert rc == 0, log[-3000:]
    dead = cluster.consume_all("dlq", 1)[0]
    assert len(dead) == 1, [(m.offset(), m.value(), m.headers()) for m in dead]
    headers = "\n".join("%s: %s" % (k, v.decode("utf-8", "replace")) for k, v in dead[0].headers()
                        if k.startswith("kinesink."))
    assert "payload.op: unknown op \"[redacted]" in headers, headers
    assert leaks(headers + log, sec.all()) == [], (leaks(headers + log, sec.all()), headers, log[-3000:])


def test_metrics_label_from_a_peer(tmp):
    """/metrics: a shard id the service made of the request's security token reaches the per-shard
    labels, scrubbed (a prefix of the token, 40 characters)."""
    sec = Secrets()
    cluster = MockCluster(tmp, topics={"t": 1})
    cluster.produce("t", [("k%d" % i, json.dumps({"id": i}), 0) for i in range(20)])
    peer = echo(tmp, sec, "shard-id")
    port = free_port()
    k = Kinesink(tmp, conf_for(cluster, peer.url, sec, **{"metrics.listen": "127.0.0.1:%d" % port}))
    base = "http://127.0.0.1:%d" % port
    wait_for(lambda: "shard=" in http_get(base + "/metrics")[1], 60, "a per-shard metric on /metrics")
    text = http_get(base + "/metrics")[1]
    assert k.stop(signal.SIGTERM, timeout=30) == 0, k.log()[-3000:]
    assert 'shard="shardId-[redacted]"' in text, text
    offered(peer, "shardId-" + sec.base_token[:40])
    everything = text + k.log()
    assert leaks(everything, sec.all()) == [], (leaks(everything, sec.all()), text)


def sso_cache(tmp, sec):
    path = os.path.join(tmp.path, ".aws", "sso", "cache", hashlib.sha1(b"corp").hexdigest() + ".json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    import datetime
    soon = (datetime.datetime.utcnow() + datetime.timedelta(seconds=600)).strftime("%Y-%m-%dT%H:%M:%SZ")
    later = (datetime.datetime.utcnow() + datetime.timedelta(days=80)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with open(path, "w") as f:
        json.dump({"startUrl": "https://corp.awsapps.com/start", "region": "eu-west-1", "accessToken": sec.sso_access,
                   "expiresAt": soon, "clientId": "client-1d", "clientSecret": sec.client_secret,
                   "refreshToken": sec.sso_refresh, "registrationExpiresAt": later}, f)
    return tmp.file("config", "[profile modern]\nsso_session = corp\nsso_account_id = 111122223333\n"
                              "sso_role_name = Writer\n[sso-session corp]\nsso_start_url = "
                              "https://corp.awsapps.com/start\nsso_region = eu-west-1\n")


def test_sso_portal_and_oidc_echo(tmp):
    """IAM Identity Center: SSO OIDC refuses the refresh quoting the request body (refresh token,
    client secret), logged as a warning; the portal refuses quoting the bearer token, in the
    credentials line."""
    sec = Secrets()
    cluster = MockCluster(tmp, topics={"t": 1})
    peer = echo(tmp, sec, "sso", "oidc")
    conf = conf_for(cluster, peer.url, sec)
    for k in ("aws.credentials.access_key_id", "aws.credentials.secret_access_key", "aws.credentials.session_token"):
        del conf[k]
    env = env_without_aws(tmp, AWS_CONFIG_FILE=sso_cache(tmp, sec), AWS_PROFILE="modern",
                          AWS_ENDPOINT_URL_SSO=peer.url, AWS_ENDPOINT_URL_SSO_OIDC=peer.url)
    rc, out, err = connect(tmp, conf, env)
    assert rc == 1, out + err
    assert "cannot refresh the SSO token" in err and "[redacted]" in err, err
    cred = [line for line in out.splitlines() if line.startswith("FAIL credentials: ")]
    assert cred and "x-amz-sso_bearer_token: [redacted]" in cred[0], out
    offered(peer, sec.sso_access)
    offered(peer, sec.sso_refresh)
    offered(peer, sec.client_secret)
    assert leaks(out + err, sec.all()) == [], (leaks(out + err, sec.all()), out + err)


class MskStandin(Peer):
    def __init__(self, tmp, cluster, region, *args):
        self.port_file, self.events_file = tmp.file("msk.port"), tmp.file("msk.events")
        super().__init__(["/usr/bin/python3", os.path.join(SRCDIR, "tests", "tools", "msk_standin.py"),
                          "--bootstrap", cluster.bootstrap, "--region", region, "--port-file", self.port_file,
                          "--events", self.events_file] + list(args), tmp.file("msk-standin.log"))
        wait_for(lambda: os.path.exists(self.port_file) or not self.alive(), 30, "the MSK stand-in")
        assert self.alive(), self.log()
        with open(self.port_file) as f:
            self.bootstrap = f.read().split()[1]

    def events(self):
        with open(self.events_file) as f:
            return [json.loads(line) for line in f if line.endswith("\n")]


def test_debug_run_sts_msk_iam_registry_password(tmp):
    """A debug-level run through every secret a run holds: base keys with a session token, STS
    AssumeRole credentials (a session token with '+', '/' and '='), MSK IAM tokens signed with
    them, a Schema Registry password (Basic auth), and a Kinesis answer quoting the security token
    in its per-entry errors. Nothing of any secret or token in any form is in the log."""
    sec = Secrets()
    cluster = MockCluster(tmp, topics={"t": 1})
    with open(os.path.join(AVRO, "insert", "key.bin"), "rb") as f:
        key = f.read()
    with open(os.path.join(AVRO, "insert", "value.bin"), "rb") as f:
        value = f.read()
    cluster.produce("t", [(key, value, 0)] * 5)
    msk = MskStandin(tmp, cluster, "us-east-1", "--key", "%s:%s" % (sec.sts_akid, sec.sts_secret))
    reg = Registry(tmp, os.path.join(AVRO, "schemas"), "--user", "%s:%s" % (sec.reg_user, sec.reg_pass))
    peer = echo(tmp, sec, "entries")
    conf = conf_for(cluster, peer.url, sec, **{
        "log.level": "debug", "aws.credentials.role.arn": ROLE, "input.format": "debezium-avro", "type": "debezium",
        "schema.registry.url": reg.url, "schema.registry.username": sec.reg_user,
        "schema.registry.password": sec.reg_pass, "kafka.bootstrap.servers": msk.bootstrap,
        "kafka.sasl.mechanism": "AWS_MSK_IAM", "kafka.security.protocol": "SASL_PLAINTEXT",
        "kafka.aws.region": "us-east-1", "kafka.debug": "security,broker,protocol", "retry.backoff.ms": "5"})
    k = Kinesink(tmp, conf, ("--exit-at-eof",), env=env_without_aws(tmp, AWS_ENDPOINT_URL_STS=peer.url))
    rc = k.wait(120)
    log = k.log()
    assert rc == 0, log[-3000:]
    assert http_get(peer.url + "/_count")[1] == "5", http_get(peer.url + "/_count")
    ev = msk.events()
    assert ev and all(e["ok"] for e in ev) and {e["session_token"] for e in ev} == {sec.sts_token}, ev
    assert "entry failed: InternalFailure: Internal service failure for the request with X-Amz-Security-Token " \
           "[redacted]" in log, log[-3000:]
    offered(peer, sec.sts_token)
    assert leaks(log, sec.all()) == [], (leaks(log, sec.all()), log[-3000:])


if __name__ == "__main__":
    main([(n, f) for n, f in sorted(globals().items()) if n.startswith("test_")])
