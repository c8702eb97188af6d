"""--check --connect against the testbed's stand-ins: every check passing (credentials from the
environment and from web identity through the STS stand-in, the mock cluster, the registry
stand-in, kinesis-mock), then each failure on its own: brokers unreachable, topic missing,
registry down, registry refusing the credentials, stream missing, no credentials. One line per
check, a hint on each failure, exit 1 when one fails, no secret anywhere."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import (KINESINK, SRCDIR, KinesisMock, MockCluster, Peer, Registry, _read_int,  # noqa: E402
                     config_text, free_port, main, wait_for)

SCHEMAS = os.path.join(SRCDIR, "tests", "data", "avro", "schemas")
AKID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def env_without_aws(tmp, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"HOME": tmp.path, "AWS_EC2_METADATA_DISABLED": "true"})
    env.update(extra)
    return env


def connect(tmp, conf, env, *args):
    path = tmp.file("connect.conf", config_text(conf))
    p = subprocess.run([KINESINK, "-c", path, "--check", "--connect"] + list(args), env=env, capture_output=True,
                       text=True, timeout=120)
    checks = {}
    for line in p.stdout.splitlines():
        status, _, rest = line.partition(" ")
        if status in ("ok", "FAIL", "skip"):
            name, _, text = rest.strip().partition(": ")
            checks[name] = (status, text)
    assert SECRET not in p.stdout + p.stderr and "s3cret" not in p.stdout + p.stderr
    return p.returncode, checks, p.stdout + p.stderr


class Testbed:
    def __init__(self, tmp):
        self.cluster = MockCluster(tmp, topics={"t": 3})
        self.kinesis = KinesisMock(tmp, {"s1": 1})
        self.registry = Registry(tmp, SCHEMAS, "--user", "reader:s3cret")
        self.conf = {
            "stream": "s1", "aws.region": "us-east-1", "endpoint": self.kinesis.endpoint, "type": "debezium",
            "topic": "t", "input.format": "debezium-avro", "schema.registry.url": self.registry.url,
            "schema.registry.username": "reader", "schema.registry.password": "s3cret",
            "kafka.bootstrap.servers": self.cluster.bootstrap, "metrics.listen": "off",
        }


def test_every_check_passes_then_each_failure(tmp):
    tb = Testbed(tmp)
    env = env_without_aws(tmp, AWS_ACCESS_KEY_ID=AKID, AWS_SECRET_ACCESS_KEY=SECRET)
    rc, checks, out = connect(tmp, tb.conf, env)
    assert rc == 0, out
    assert checks["credentials"] == ("ok", "from environment (access key id AKIA****MPLE)"), out
    assert checks["kafka"] == ("ok", "1 broker at %s answered; topic 't': 3 partitions" % tb.cluster.bootstrap), out
    assert checks["schema registry"][0] == "ok" and "answered (%d subjects)" % len(os.listdir(SCHEMAS)) in checks["schema registry"][1], out
    assert checks["kinesis"] == ("ok", "stream 's1' in region us-east-1 at %s is active (DescribeStreamSummary)"
                                 % tb.kinesis.endpoint), out
    assert "stream = s1" in out  # the offline --check output comes first

    # Brokers unreachable: said within the timeout, with what to check; the other checks still run.
    dead = "127.0.0.1:%d" % free_port()
    rc, checks, out = connect(tmp, dict(tb.conf, **{"kafka.bootstrap.servers": dead}), env)
    assert rc == 1, out
    status, text = checks["kafka"]
    assert status == "FAIL" and text.startswith("cannot reach the Kafka brokers at %s within 10 s: " % dead), out
    assert "check kafka.bootstrap.servers" in text, out
    assert "[kafka]" not in out, out  # librdkafka's retries are not printed: the line says it
    assert [checks[c][0] for c in ("credentials", "schema registry", "kinesis")] == ["ok"] * 3, out

    # Topic missing (one of a list).
    rc, checks, out = connect(tmp, dict(tb.conf, topic="t, nope"), env)
    assert rc == 1 and checks["kafka"] == (
        "FAIL", "topic 'nope' does not exist on the cluster at %s -> create it, or fix the 'topic' property"
        % tb.cluster.bootstrap), out

    # Registry refusing the credentials, then down.
    rc, checks, out = connect(tmp, dict(tb.conf, **{"schema.registry.password": "wrong"}), env)
    assert rc == 1, out
    assert checks["schema registry"] == (
        "FAIL", "%s/subjects answered HTTP 401: the credentials were refused -> check schema.registry.username "
        "and schema.registry.password" % tb.registry.url), out
    tb.registry.stop()
    rc, checks, out = connect(tmp, tb.conf, env)
    status, text = checks["schema registry"]
    assert rc == 1 and status == "FAIL" and text.startswith("cannot reach the registry: GET %s/subjects failed: " % tb.registry.url), out
    assert text.endswith("-> check schema.registry.url and the network"), out

    # Stream missing.
    conf = dict(tb.conf, stream="nope", **{"input.format": "debezium-json"})
    del conf["schema.registry.url"]
    rc, checks, out = connect(tmp, conf, env)
    assert rc == 1, out
    status, text = checks["kinesis"]
    assert status == "FAIL" and "stream 'nope'" in text and "ResourceNotFoundException" in text, out
    assert "check that the stream exists in that region" in text, out
    assert checks["schema registry"][0] == "skip", out

    # No credentials anywhere: said, with what to set, and the stream is not checked.
    rc, checks, out = connect(tmp, tb.conf, env_without_aws(tmp))
    assert rc == 1, out
    status, text = checks["credentials"]
    assert status == "FAIL" and "aws.credentials.access_key_id" in text and "AWS_PROFILE" in text, out
    assert checks["kinesis"][0] == "skip" and "needs credentials" in checks["kinesis"][1], out


class AwsStandin(Peer):
    def __init__(self, tmp):
        pf = tmp.file("standin.port")
        super().__init__(["/usr/bin/python3", os.path.join(SRCDIR, "tests", "tools", "aws_standin.py"),
                          "--port-file", pf], tmp.file("standin.log"))
        self.url = "http://127.0.0.1:%d" % wait_for(lambda: _read_int(pf), 20, "the AWS stand-in")


def test_credentials_from_web_identity_are_named_and_used(tmp):
    tb = Testbed(tmp)
    sts = AwsStandin(tmp)
    token = tmp.file("token", "eyJhbGciOiJSUzI1NiJ9.service-account-token\n")
    env = env_without_aws(tmp, AWS_WEB_IDENTITY_TOKEN_FILE=token, AWS_ROLE_ARN="arn:aws:iam::123456789012:role/k",
                          AWS_ENDPOINT_URL_STS=sts.url)
    rc, checks, out = connect(tmp, tb.conf, env)
    assert rc == 0, out
    status, text = checks["credentials"]
    assert status == "ok" and text.startswith("from web-identity (access key id ASIA****0001, temporary, expire in "), out
    assert "standin-secret" not in out and "standin-token" not in out, out


def test_config_errors_still_exit_2(tmp):
    path = tmp.file("bad.conf", "topic = t\nstream = s\n")
    p = subprocess.run([KINESINK, "-c", path, "--check", "--connect"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "missing required key" in p.stderr, p.stderr
    p = subprocess.run([KINESINK, "-c", path, "--connect"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "--connect goes with --check" in p.stderr, p.stderr


if __name__ == "__main__":
    main([(n, f) for n, f in sorted(globals().items()) if n.startswith("test_")])
