"""MSK IAM authentication (kafka.sasl.mechanism = AWS_MSK_IAM): kinesink's token byte for byte
against botocore's (the AWS MSK IAM SASL signer's recipe: SigV4QueryAuth of kafka-cluster:Connect,
then User-Agent, base64url); and end to end through tests/tools/msk_standin.py, a broker stand-in
that checks the token with botocore before relaying to the mock cluster: records move and
offsets commit; a refused token stops the worker with exit 1 and a clear message; tokens are
refreshed before the credentials behind them expire."""
import json
import os
import subprocess
import sys
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import (BUILDDIR, KINESINK, SRCDIR, Kinesink, KinesisMock, MockCluster, Peer, _read_int,  # noqa: E402
                     base_config, config_text, main, run_kinesink, wait_for)

sys.path.insert(0, os.path.join(SRCDIR, "tests", "tools"))
import msk_standin  # noqa: E402

MSK_TOKEN = os.path.join(BUILDDIR, "tests", "tools", "msk_token")
STANDIN = os.path.join(SRCDIR, "tests", "tools", "msk_standin.py")
AWS_STANDIN = os.path.join(SRCDIR, "tests", "tools", "aws_standin.py")
TOPIC = "orders"


def version():
    out = subprocess.run([KINESINK, "--version"], capture_output=True, text=True, timeout=30).stdout
    return out.split()[1]


def our_token(spec):
    p = subprocess.run([MSK_TOKEN], input=json.dumps(spec), capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    token, expiry = p.stdout.split()
    return token, int(expiry)


def test_token_matches_botocore(tmp):
    ua = "kinesink/" + version()
    cases = [
        ("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None, "us-east-1", 1795000000),
        ("ASIAEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "IQoJb3JpZ2luX2VjEXAMPLE//tok+en==", "eu-west-1",
         1700000000),
        ("ASIAODDEXAMPLE", "s/+= ecret", "a b+c/d=e&f?g%h~i_j.k-l\u00e9", "ap-southeast-2", 2000000000),
        ("AKIDEXAMPLE", "secret", "", "cn-north-1", 1795000001),
    ]
    for akid, secret, token, region, t in cases:
        spec = {"akid": akid, "secret": secret, "token": token, "region": region, "time": t}
        ours, expiry = our_token(spec)
        ref = msk_standin.reference_token(akid, secret, token or None, region, t, 900, ua)
        assert ours == ref, "token differs for %r:\n--- kinesink\n%s\n--- botocore\n%s" % (spec, ours, ref)
        assert expiry == (t + 900) * 1000
        ok, d = msk_standin.check_token(ours, region, {akid: secret}, now=t + 1)
        assert ok, d
    # The credentials' own expiry cuts the token's lifetime.
    _, expiry = our_token({"akid": "A", "secret": "s", "region": "us-east-1", "time": 1795000000,
                           "expiration": 1795000300})
    assert expiry == 1795000300 * 1000


class MskStandin(Peer):
    def __init__(self, tmp, cluster, region, *args):
        self.port_file, self.events_file = tmp.file("msk.port"), tmp.file("msk.events")
        super().__init__(["/usr/bin/python3", STANDIN, "--bootstrap", cluster.bootstrap, "--region", region,
                          "--port-file", self.port_file, "--events", self.events_file] + list(args),
                         tmp.file("msk-standin.log"))
        wait_for(lambda: os.path.exists(self.port_file) or not self.alive(), 30, "the MSK stand-in")
        assert self.alive(), self.log()
        with open(self.port_file) as f:
            self.bootstrap = f.read().split()[1]

    def events(self):
        try:
            with open(self.events_file) as f:
                return [json.loads(line) for line in f if line.endswith("\n")]
        except OSError:
            return []


def setup(tmp, region="eu-west-1", standin_args=(), messages=40, **conf):
    cluster = MockCluster(tmp, brokers=2, topics={TOPIC: 4, "dead": 1})
    kinesis = KinesisMock(tmp, {"s1": 2})
    standin = MskStandin(tmp, cluster, region, *standin_args)
    cluster.produce(TOPIC, [("k%d" % i, json.dumps({"id": i}), i % 4) for i in range(messages)])
    c = base_config(cluster, kinesis.endpoint, topic=TOPIC, type="append-only", **{"input.format": "json"})
    c.update({"kafka.bootstrap.servers": standin.bootstrap, "kafka.sasl.mechanism": "AWS_MSK_IAM",
              "kafka.security.protocol": "SASL_PLAINTEXT", "kafka.aws.region": region})
    c.update(conf)
    return cluster, kinesis, standin, c


def test_end_to_end(tmp):
    token = "IQoJb3JpZ2luX2Vj+session/token=="
    cluster, kinesis, standin, c = setup(
        tmp, standin_args=("--key", "AKIDTEST:testsecret"), **{"aws.credentials.session_token": token})
    rc, log = run_kinesink(tmp, c, timeout=120)
    assert rc == 0, log[-3000:]
    assert kinesis.count("s1") == 40
    assert cluster.committed("kinesink", TOPIC, 4) == {p: 10 for p in range(4)}
    ev = standin.events()
    # The consumer connects to both brokers through the stand-in (a Metadata answer not rewritten
    # would send it to the mock brokers directly, with one authentication only).
    assert len(ev) >= 2 and all(e["ok"] for e in ev), ev
    assert {e["akid"] for e in ev} == {"AKIDTEST"} and {e["session_token"] for e in ev} == {token}, ev
    assert "testsecret" not in log and token not in log


def test_region_from_broker_names(tmp):
    """Without kafka.aws.region the region comes from MSK broker host names (here a serverless
    one; a made-up name that resolves nowhere, the second entry being the stand-in) before
    aws.region: the stand-in accepts only tokens for that region."""
    cluster, kinesis, standin, c = setup(tmp, region="ap-south-2", standin_args=("--key", "AKIDTEST:testsecret"),
                                         messages=8)
    del c["kafka.aws.region"]
    # librdkafka tries every bootstrap name; the stand-in answers. The MSK name comes first.
    c["kafka.bootstrap.servers"] = "boot-x.c1.kafka-serverless.ap-south-2.amazonaws.com.invalid:9098," + standin.bootstrap
    rc, log = run_kinesink(tmp, c, timeout=120)
    assert rc == 0, log[-3000:]
    assert kinesis.count("s1") == 8
    assert "region ap-south-2 (from bootstrap.servers)" in log, log[-2000:]


def test_dead_letter_producer(tmp):
    """The dead-letter producer authenticates the same way (the brokers are reachable only
    through the stand-in)."""
    cluster, kinesis, standin, c = setup(tmp, standin_args=("--key", "AKIDTEST:testsecret"), messages=8,
                                         **{"errors.policy": "dlq", "errors.dlq.topic": "dead"})
    cluster.produce(TOPIC, [("bad", "not json {", 0)])
    rc, log = run_kinesink(tmp, c, timeout=120)
    assert rc == 0, log[-3000:]
    assert kinesis.count("s1") == 8
    dead = cluster.consume_all("dead", 1)[0]
    assert [m.value() for m in dead] == [b"not json {"], dead
    assert all(e["ok"] for e in standin.events())


def test_dead_letter_producer_refused(tmp):
    """The brokers refuse the dead-letter producer's token (its client.id is the consumer's with
    -dlq) while the consumer's is accepted: the worker stops with exit 1 and the reason, well
    before librdkafka would give up on the dead letter (message.timeout.ms, 5 minutes), and the
    bad record's offset is not committed."""
    cluster, kinesis, standin, c = setup(tmp, standin_args=("--key", "AKIDTEST:testsecret",
                                                            "--refuse-client-id", "rdkafka-dlq"),
                                         messages=8, **{"errors.policy": "dlq", "errors.dlq.topic": "dead"})
    cluster.produce(TOPIC, [("bad", "not json {", 0)])
    rc, log = run_kinesink(tmp, c, timeout=120)
    assert rc == 1, log[-3000:]
    assert "cannot dead-letter %s [0] @2 to dead: " % TOPIC in log, log[-3000:]
    assert "the dead-letter producer: Kafka SASL authentication with AWS MSK IAM failed: " in log, log[-3000:]
    assert "client.id rdkafka-dlq may not connect" in log, log[-3000:]
    assert "testsecret" not in log
    ev = standin.events()
    assert {e["client_id"] for e in ev if e["ok"]} == {"rdkafka"}, ev
    assert {e["client_id"] for e in ev if not e["ok"]} == {"rdkafka-dlq"}, ev
    assert cluster.consume_all("dead", 1)[0] == []
    assert cluster.committed("kinesink", TOPIC, 4).get(0, 0) <= 2


def test_kafka_role(tmp):
    """kafka.aws.credentials.role.arn: the tokens are signed with the role's credentials (STS
    AssumeRole on the stand-in, with the external id), the Kinesis side keeps its own keys."""
    aws = Peer(["/usr/bin/python3", AWS_STANDIN, "--port-file", tmp.file("aws.port"), "--sts-key", "AKIDTEST:testsecret"],
               tmp.file("aws-standin.log"))
    port = wait_for(lambda: _read_int(tmp.file("aws.port")), 20, "the AWS stand-in")
    cluster, kinesis, standin, c = setup(tmp, standin_args=("--accept-standin-keys",), messages=8,
                                         **{"kafka.aws.credentials.role.arn": "arn:aws:iam::123456789012:role/msk",
                                            "kafka.aws.credentials.role.external_id": "ext-7"})
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"HOME": tmp.path, "AWS_EC2_METADATA_DISABLED": "true",
                "AWS_ENDPOINT_URL_STS": "http://127.0.0.1:%d" % port})
    k = Kinesink(tmp, c, args=("--exit-at-eof",), env=env)
    try:
        rc = k.wait(120)
    finally:
        with urllib.request.urlopen("http://127.0.0.1:%d/_requests" % port) as r:
            requests = json.loads(r.read())
        aws.stop()
    assert rc == 0, k.log()[-3000:]
    assert kinesis.count("s1") == 8
    ev = standin.events()
    assert ev and all(e["ok"] and e["akid"].startswith("ASIASTANDIN") for e in ev), ev
    bodies = [r["body"] for r in requests if r["method"] == "POST"]
    assert bodies and all("Action=AssumeRole" in b and "RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fmsk" in b
                          and "ExternalId=ext-7" in b for b in bodies), bodies


def test_refused_token_exits_1(tmp):
    cluster, kinesis, standin, c = setup(tmp, standin_args=("--key", "AKIDTEST:the-right-secret"), messages=4)
    rc, log = run_kinesink(tmp, c, timeout=90)
    assert rc == 1, log[-3000:]
    assert "SASL authentication with AWS MSK IAM failed" in log, log[-3000:]
    assert "signature does not match" in log, log[-3000:]
    assert "testsecret" not in log
    ev = standin.events()
    assert ev and not any(e["ok"] for e in ev), ev
    assert kinesis.count("s1") == 0


def test_tokens_refreshed_before_credentials_expire(tmp):
    """Temporary credentials that live 20 s (container endpoint stand-in): each token lives no
    longer than its credentials, librdkafka asks for a new one at 80 % of that, and connections
    the stand-in closes every 6 s come back with the newer tokens, signed with newer credentials."""
    aws = Peer(["/usr/bin/python3", AWS_STANDIN, "--port-file", tmp.file("aws.port"), "--ttl", "20"],
               tmp.file("aws-standin.log"))
    port = wait_for(lambda: _read_int(tmp.file("aws.port")), 20, "the AWS stand-in")
    cluster, kinesis, standin, c = setup(tmp, standin_args=("--accept-standin-keys", "--max-session", "6"))
    del c["aws.credentials.access_key_id"], c["aws.credentials.secret_access_key"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"HOME": tmp.path, "AWS_EC2_METADATA_DISABLED": "true",
                "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1:%d/container/creds" % port})
    k = Kinesink(tmp, c, args=(), env=env)
    try:
        wait_for(lambda: kinesis.count("s1") == 40 or not k.alive(), 90, "the records in Kinesis")
        first = standin.events()[0]["akid"]
        # A later connection authenticates with a token made from later credentials.
        wait_for(lambda: any(e["akid"] != first for e in standin.events()) or not k.alive(), 90,
                 "a token signed with refreshed credentials")
        assert k.alive(), k.log()[-3000:]
    finally:
        rc = k.stop()
        aws.stop()
    ev = standin.events()
    assert all(e["ok"] for e in ev), ev
    assert len({e["akid"] for e in ev}) >= 2, ev
    assert rc == 0, k.log()[-3000:]
    assert "standin-secret" not in k.log()


def scram_setup(tmp, password, messages=8, mechanism="SCRAM-SHA-256"):
    cluster, kinesis, standin, c = setup(tmp, standin_args=("--scram", "svc:right-pass%word"), messages=messages)
    del c["kafka.aws.region"]
    c.update({"kafka.sasl.mechanism": mechanism, "kafka.sasl.username": "svc", "kafka.sasl.password": password})
    return cluster, kinesis, standin, c


def test_scram(tmp):
    """Not MSK IAM: SCRAM through the same stand-in, which checks the proof as a Kafka broker
    does. The right password moves the records (librdkafka's SCRAM client and the stand-in agree,
    both ways); the wrong one stops the worker with exit 1 and the broker's reason instead of
    retrying for ever, nothing written or committed, the password never logged."""
    cluster, kinesis, standin, c = scram_setup(tmp, "right-pass%word", mechanism="SCRAM-SHA-512")
    rc, log = run_kinesink(tmp, c, timeout=120)
    assert rc == 0, log[-3000:]
    assert kinesis.count("s1") == 8
    ev = standin.events()
    assert ev and all(e["ok"] and e["mechanism"] == "SCRAM-SHA-512" for e in ev), ev
    assert "right-pass%word" not in log


def test_scram_refused_exits_1(tmp):
    cluster, kinesis, standin, c = scram_setup(tmp, "wrong-pass")
    rc, log = run_kinesink(tmp, c, timeout=60)
    assert rc == 1, log[-3000:]
    stop = [ln for ln in log.splitlines() if "ERROR [pipeline] Kafka SASL authentication (SCRAM-SHA-256) failed: " in ln]
    assert stop and ("SASL authentication error: Authentication failed during authentication due to invalid "
                     "credentials with SASL mechanism SCRAM-SHA-256") in stop[0], log[-3000:]
    assert "Check kafka.sasl.username and kafka.sasl.password" in log, log[-3000:]
    assert "wrong-pass" not in log and "right-pass" not in log
    ev = standin.events()
    assert ev and not any(e["ok"] for e in ev) and {e["reason"] for e in ev} == {"wrong password"}, ev
    assert kinesis.count("s1") == 0
    assert all(o < 0 for o in cluster.committed("kinesink", TOPIC, 4).values())


def check_run(tmp, c, *args, name="check"):
    path = tmp.file(name + ".conf", config_text(c))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"HOME": tmp.path, "AWS_EC2_METADATA_DISABLED": "true"})
    p = subprocess.run([KINESINK, "-c", path] + list(args), env=env, capture_output=True, text=True, timeout=120)
    assert "testsecret" not in p.stdout + p.stderr
    return p.returncode, p.stdout, p.stderr


def test_check_modes(tmp):
    """--check, --check --connect and --preview see the configuration the consumer and the
    dead-letter producer really get (AWS_MSK_IAM is SASL/OAUTHBEARER to librdkafka): the
    offline check passes for SASL_PLAINTEXT and SASL_SSL, the dead-letter producer included;
    what librdkafka refuses on top of it is said in start-up's words; --connect and --preview
    authenticate through the stand-in."""
    cluster, kinesis, standin, c = setup(tmp, standin_args=("--key", "AKIDTEST:testsecret"), messages=6,
                                         **{"errors.policy": "dlq", "errors.dlq.topic": "dead"})
    for proto in ("SASL_PLAINTEXT", "SASL_SSL"):
        rc, out, err = check_run(tmp, dict(c, **{"kafka.security.protocol": proto}), "--check")
        assert rc == 0, err
        assert "kafka.sasl.mechanism = AWS_MSK_IAM" in out and "kafka.security.protocol = %s" % proto in out, out
    # Without a security.protocol the client gets SASL_SSL, as at start.
    c_default = {k: v for k, v in c.items() if k != "kafka.security.protocol"}
    rc, out, err = check_run(tmp, c_default, "--check")
    assert rc == 0, err
    # Without a security.protocol AWS_MSK_IAM means SASL_SSL, so librdkafka builds its TLS context
    # when the client is made: a CA file that cannot be read is refused by --check in start-up's
    # words, for the consumer and the dead-letter producer; with SASL_PLAINTEXT it is never read.
    bad_ca = dict(c_default, **{"kafka.ssl.ca.location": tmp.file("missing-dir/ca.pem")})
    rc, out, err = check_run(tmp, bad_ca, "--check")
    assert rc == 2, out + err
    lines = [ln.split("kinesink: ", 1)[1] for ln in err.splitlines() if "cannot create the" in ln]
    assert len(lines) == 2 and all("ssl.ca.location failed" in ln for ln in lines), err
    assert lines[0].startswith("cannot create the Kafka consumer: "), err
    assert lines[1].startswith("cannot create the dead-letter producer for topic dead: "), err
    # A run makes the dead-letter producer first; without errors.policy=dlq, the consumer.
    start = run_kinesink(tmp, bad_ca, timeout=60, name="bad-ca")[1]
    assert lines[1] in start, (err, start[-2000:])
    start = run_kinesink(tmp, dict(bad_ca, **{"errors.policy": "fail"}), timeout=60, name="bad-ca-consumer")[1]
    assert lines[0] in start, (err, start[-2000:])
    assert "AWS_MSK_IAM" not in err, err
    rc, out, err = check_run(tmp, dict(bad_ca, **{"kafka.security.protocol": "SASL_PLAINTEXT"}), "--check")
    assert rc == 0, err
    assert not standin.events()  # the offline check reached no broker

    rc, out, err = check_run(tmp, c, "--check", "--connect")
    assert rc == 0, out + err
    kafka = [ln for ln in out.splitlines() if ln.startswith("ok") and " kafka: " in ln]
    assert kafka and "topic '%s': 4 partitions" % TOPIC in kafka[0], out
    ev = standin.events()
    assert ev and all(e["ok"] and e["akid"] == "AKIDTEST" for e in ev), ev

    n = len(ev)
    rc, out, err = check_run(tmp, c, "--preview", "6", "--from-beginning")
    assert rc == 0, out + err
    assert sorted(json.loads(ln.split(" data=", 1)[1])["id"] for ln in out.splitlines() if " data=" in ln) == \
        list(range(6)), out
    ev = standin.events()
    assert len(ev) > n and all(e["ok"] for e in ev), ev


if __name__ == "__main__":
    main([(n, f) for n, f in sorted(globals().items()) if n.startswith("test_")])
