"""The command line through the real binary: exit codes, --check, --help-config, -X, secrets."""
import os
import socket
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import KINESINK, SRCDIR, FakeKinesis, config_text, main  # noqa: E402

REFERENCE = os.path.join(SRCDIR, "tests", "data", "conf", "reference-example", "input.sql")


def run(*args):
    p = subprocess.run([KINESINK] + list(args), capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout, p.stderr


def test_reference_example_passes_check(tmp):
    rc, out, err = run("-c", REFERENCE, "--check")
    assert rc == 0, err
    assert "stream = kinesis-sink-demo" in out and "topic = mv1" in out and "type = append-only" in out
    assert "SECRETVALUE" not in out + err and "aws.credentials.secret_access_key = [redacted]" in out


def test_statement_on_the_command_line(tmp):
    with open(REFERENCE) as f:
        sql = f.read()
    rc, out, err = run("-e", sql, "--check", "-X", "stream=other", "-X", "stream=last")
    assert rc == 0, err
    assert "stream = last" in out


def test_invalid_config_exits_2_with_all_errors(tmp):
    path = tmp.file("bad.conf", "topic = t\nstrem = s\ntype = retract\n")
    rc, out, err = run("-c", path, "--check")
    assert rc == 2
    assert "bad.conf:2: unknown key 'strem' (did you mean 'stream'?)" in err, err
    assert "bad.conf:3: `type` must be append-only, debezium, or upsert (got 'retract')" in err, err
    assert "missing required key 'aws.region'" in err


def test_secret_never_printed_on_error(tmp):
    path = tmp.file("s.conf", "topic = t\naws.credentials.secret_access_key = SECRETVALUE\nkafka.sasl.password = SECRETVALUE\n")
    rc, out, err = run("-c", path, "--check")
    assert rc == 2
    assert "SECRETVALUE" not in out + err


def test_usage_errors_exit_2(tmp):
    assert run("--no-such-option")[0] == 2
    assert run()[0] == 2
    rc, out, err = run("-c", "/nonexistent/kinesink.conf")
    assert rc == 2 and "/nonexistent/kinesink.conf: cannot open" in err, err
    rc, out, err = run("-c", REFERENCE, "-X", "novalue")
    assert rc == 2 and "-X expects key=value, got 'novalue'" in err, err


def test_help_version_and_help_config(tmp):
    rc, out, _ = run("--version")
    assert rc == 0 and out.startswith("kinesink ")
    rc, out, _ = run("--help")
    assert rc == 0 and "--exit-at-eof" in out
    rc, out, _ = run("--help-config")
    assert rc == 0
    for key in ("connector", "stream", "aws.region", "endpoint", "aws.credentials.access_key_id",
                "aws.credentials.secret_access_key", "aws.credentials.session_token", "aws.credentials.role.arn",
                "aws.credentials.role.external_id", "type", "force_append_only", "primary_key", "topic",
                "input.format", "schema.registry.url", "errors.policy", "ordering", "metrics.listen", "kafka.*"):
        assert "\n" + key + " " in "\n" + out, key
    # Where credentials come from without keys: the chain in the order creds_chain.c and
    # creds_profile.c try it, in --help-config and in the man page.
    rc, man, _ = run("--man")
    assert rc == 0
    chain = ["1. the environment: AWS_ACCESS_KEY_ID", "role_arn with source_profile or credential_source",
             "web identity (web_identity_token_file", "IAM Identity Center", "the static keys of the credentials file",
             "credential_process", "the static keys of the config file", "3. container credentials",
             "4. EC2 instance metadata (IMDSv2)", "aws.credentials.role.arn then assumes a role"]
    for text in (out.split("\nAWS credentials:\n", 1)[1], man.split(".SH AWS CREDENTIALS\n", 1)[1].replace("\\-", "-")):
        at = [text.find(c) for c in chain]
        assert -1 not in at and at == sorted(at), list(zip(chain, at))
    with open(os.path.join(SRCDIR, "docs", "configuration.md")) as f:
        assert out in f.read(), "docs/configuration.md does not hold the current --help-config output"


def test_every_example_config_passes_check(tmp):
    ex = os.path.join(SRCDIR, "examples")
    files = [f for f in os.listdir(ex) if f.endswith((".conf", ".sql"))]
    assert len(files) >= 6, files
    for f in files:
        rc, out, err = run("-c", os.path.join(ex, f), "--check")
        assert rc == 0, (f, err)
        assert "change-me" not in out and "your_secret_key" not in out, f


def test_unreachable_kinesis_is_a_runtime_failure(tmp):
    path = tmp.file("k.conf", "topic = t\nstream = s\naws.region = us-east-1\ntype = upsert\n"
                    "endpoint = http://127.0.0.1:9\nconnect.timeout.ms = 500\nmetrics.listen = off\n"
                    "aws.credentials.access_key_id = AKID\naws.credentials.secret_access_key = SECRETVALUE\n")
    rc, out, err = run("-c", path)
    assert rc == 1, err
    assert "cannot reach Kinesis for stream 's' in region us-east-1" in err, err
    assert "SECRETVALUE" not in err


def kafka_conf(endpoint, **extra):
    conf = {"topic": "t", "stream": "s1", "aws.region": "us-east-1", "type": "upsert", "endpoint": endpoint,
            "aws.credentials.access_key_id": "AKIDTEST", "aws.credentials.secret_access_key": "SECRETVALUE",
            "metrics.listen": "off", "kafka.bootstrap.servers": "127.0.0.1:9"}
    conf.update({k.replace("__", "."): v for k, v in extra.items()})
    return conf


def check_then_start(tmp, conf):
    """--check's message for conf, and that start-up (up to the Kafka clients) gives the same one."""
    path = tmp.file("k.conf", config_text(conf))
    rc, out, err = run("-c", path, "--check")
    assert rc == 2, (out, err)
    lines = err.splitlines()
    assert len(lines) == 2 and lines[1] == "kinesink: configuration invalid (1 error)", err
    assert lines[0].startswith("kinesink: "), err
    msg = lines[0][len("kinesink: "):]
    rc, out, started = run("-c", path)
    assert rc == 1, started
    assert "ERROR [pipeline] " + msg + "\n" in started, (msg, started)
    assert "SECRETVALUE" not in err + started
    return msg


def test_check_sees_the_consumer_cross_property_rules(tmp):
    fk = FakeKinesis(tmp)
    msg = check_then_start(tmp, kafka_conf(fk.endpoint, kafka__message__max__bytes="5000000"))
    assert msg == "cannot create the Kafka consumer: `fetch.max.bytes` must be >= `message.max.bytes`", msg


def test_check_sees_the_dead_letter_producer_cross_property_rules(tmp):
    fk = FakeKinesis(tmp)
    msg = check_then_start(tmp, kafka_conf(fk.endpoint, errors__policy="dlq", errors__dlq__topic="dlq",
                                           kafka__max__in__flight="10"))
    assert msg == "cannot create the dead-letter producer for topic dlq: `max.in.flight` must be set <= 5 " \
                  "when `enable.idempotence` is true", msg
    # The consumer alone takes it: without a dead-letter producer the same setting passes.
    rc, out, err = run("-c", tmp.file("ok.conf", config_text(kafka_conf(fk.endpoint, kafka__max__in__flight="10"))),
                       "--check")
    assert rc == 0, err


def test_check_connects_nowhere(tmp):
    # A broker (and Kinesis endpoint) that would see any connection --check made.
    lsn = socket.socket()
    lsn.bind(("127.0.0.1", 0))
    lsn.listen(8)
    lsn.settimeout(0.5)
    addr = "127.0.0.1:%d" % lsn.getsockname()[1]
    conf = kafka_conf("http://" + addr, errors__policy="dlq", errors__dlq__topic="dlq",
                      kafka__bootstrap__servers=addr)
    try:
        for _ in range(3):
            rc, out, err = run("-c", tmp.file("k.conf", config_text(conf)), "--check")
            assert rc == 0, err
        try:
            lsn.accept()
            raise AssertionError("--check connected to %s" % addr)
        except socket.timeout:
            pass
    finally:
        lsn.close()


if __name__ == "__main__":
    main([(n, f) for n, f in sorted(globals().items()) if n.startswith("test_")])
