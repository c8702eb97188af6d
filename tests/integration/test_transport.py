"""The writer's transport: an HTTP proxy (`http.proxy`, absolute-URI and CONNECT) and TLS verified
against a private CA (`ssl.ca.location`), end to end to kinesis-mock with read-back.

The CA and the server certificate (for IP 127.0.0.1) are made with the openssl CLI at test time;
the proxy and the TLS terminator are tests/tools/transport_standin.py."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import KinesisMock, MockCluster, Standin, base_config, free_port, main, run_kinesink  # noqa: E402

TOPIC = "inventory.customers"
PARTS = 2
N = 40


class StandIn(Standin):
    """The proxy or the TLS terminator of tests/tools/transport_standin.py, logging what it relayed."""

    def __init__(self, tmp, mode, *args):
        self.requests_log = tmp.file(mode + ".requests")
        super().__init__(tmp, "transport_standin.py", mode, mode, "--log", self.requests_log, *args)

    def requests(self):
        with open(self.requests_log) as f:
            return [line.split(" ") for line in f.read().splitlines()]


def make_ca(tmp, sub="pki"):
    """A private CA and a certificate for 127.0.0.1 signed by it: (ca.pem, server.pem, server.key)."""
    d = os.path.join(tmp.path, sub)
    os.makedirs(d, exist_ok=True)

    def openssl(*args):
        subprocess.run(["openssl"] + list(args), cwd=d, check=True, capture_output=True)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=kinesink test CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign")
    openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "2", "-extfile", "server.ext")
    return [os.path.join(d, f) for f in ("ca.pem", "server.pem", "server.key")]


def setup(tmp):
    cluster = MockCluster(tmp, topics={TOPIC: PARTS})
    km = KinesisMock(tmp, {"s1": 1})
    msgs = [(json.dumps({"id": i}), json.dumps({"id": i, "name": "row-%d" % i}), i % PARTS) for i in range(N)]
    cluster.produce(TOPIC, msgs)
    return cluster, km


def run(tmp, cluster, endpoint, **props):
    conf = base_config(cluster, endpoint, type="append-only", topic=TOPIC, input__format="json",
                       connect__timeout__ms="2000", delivery__timeout__ms="20000")
    conf.update({k.replace("__", "."): v for k, v in props.items()})
    return run_kinesink(tmp, conf)


def assert_all_arrived(km, cluster):
    got = sorted(json.loads(data)["id"] for shard in km.read_all("s1").values() for _, data, _ in shard)
    assert got == list(range(N)), got
    committed = cluster.committed("kinesink", TOPIC, PARTS)
    assert committed == {p: N // PARTS for p in range(PARTS)}, committed


def targets(proxy):
    return [r[2] for r in proxy.requests() if r[0] == "POST"]


def test_http_endpoint_through_proxy(tmp):
    cluster, km = setup(tmp)
    proxy = StandIn(tmp, "proxy")
    rc, log = run(tmp, cluster, km.endpoint, http__proxy="http://127.0.0.1:%d" % proxy.port)
    assert rc == 0, log[-3000:]
    assert_all_arrived(km, cluster)
    seen = targets(proxy)
    assert seen[0] == "Kinesis_20131202.DescribeStreamSummary", seen
    assert "Kinesis_20131202.PutRecords" in seen, seen
    assert all(r[1].startswith(km.endpoint + "/") for r in proxy.requests()), proxy.requests()


def test_https_with_private_ca(tmp):
    ca, cert, key = make_ca(tmp)
    cluster, km = setup(tmp)
    tls = StandIn(tmp, "tls", "--cert", cert, "--key", key, "--upstream", "127.0.0.1:%d" % km.port)
    rc, log = run(tmp, cluster, "https://127.0.0.1:%d" % tls.port, ssl__ca__location=ca)
    assert rc == 0, log[-3000:]
    assert_all_arrived(km, cluster)


def test_https_unknown_ca_is_refused(tmp):
    _, cert, key = make_ca(tmp)
    cluster, km = setup(tmp)
    tls = StandIn(tmp, "tls", "--cert", cert, "--key", key, "--upstream", "127.0.0.1:%d" % km.port)
    rc, log = run(tmp, cluster, "https://127.0.0.1:%d" % tls.port)
    assert rc == 1, log[-3000:]
    assert "cannot reach Kinesis for stream 's1' in region us-east-1" in log, log[-3000:]
    assert "certificate" in log and "set ssl.ca.location" in log, log[-3000:]
    assert km.count("s1") == 0
    assert cluster.committed("kinesink", TOPIC, PARTS) == {p: -1001 for p in range(PARTS)}


def test_https_with_another_ca_names_the_file(tmp):
    _, cert, key = make_ca(tmp)
    other_ca, _, _ = make_ca(tmp, "other")
    cluster, km = setup(tmp)
    tls = StandIn(tmp, "tls", "--cert", cert, "--key", key, "--upstream", "127.0.0.1:%d" % km.port)
    rc, log = run(tmp, cluster, "https://127.0.0.1:%d" % tls.port, ssl__ca__location=other_ca)
    assert rc == 1, log[-3000:]
    assert "certificate" in log and "(check ssl.ca.location = %s)" % other_ca in log, log[-3000:]
    assert cluster.committed("kinesink", TOPIC, PARTS) == {p: -1001 for p in range(PARTS)}


def test_https_through_proxy_tunnel(tmp):
    ca, cert, key = make_ca(tmp)
    cluster, km = setup(tmp)
    tls = StandIn(tmp, "tls", "--cert", cert, "--key", key, "--upstream", "127.0.0.1:%d" % km.port)
    proxy = StandIn(tmp, "proxy")
    rc, log = run(tmp, cluster, "https://127.0.0.1:%d" % tls.port, ssl__ca__location=ca,
                  http__proxy="http://127.0.0.1:%d" % proxy.port)
    assert rc == 0, log[-3000:]
    assert_all_arrived(km, cluster)
    reqs = proxy.requests()
    assert reqs and all(r[0] == "CONNECT" and r[1] == "127.0.0.1:%d" % tls.port for r in reqs), reqs


def test_proxy_down_is_a_clear_error_without_its_password(tmp):
    cluster, km = setup(tmp)
    port = free_port()
    rc, log = run(tmp, cluster, km.endpoint, http__proxy="http://svc:SECRETVALUE@127.0.0.1:%d" % port)
    assert rc == 1, log[-3000:]
    assert "through proxy http://[redacted]@127.0.0.1:%d" % port in log, log[-3000:]
    assert "SECRETVALUE" not in log
    assert km.count("s1") == 0


if __name__ == "__main__":
    main([(n, f) for n, f in sorted(globals().items()) if n.startswith("test_")])
