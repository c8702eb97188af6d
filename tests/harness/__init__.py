"""The local testbed for kinesink's integration tests: real peers on loopback.

- MockCluster: librdkafka's mock cluster (tests/tools/mockcluster) as a Kafka over TCP.
- KinesisMock: the kinesis-mock emulator (npm kinesis-local, pinned in tests/node), bound to 127.0.0.1.
- FakeKinesis: the tests' own fault-injecting PutRecords endpoint (tests/tools/fakekinesis).
- Kinesink: the real binary, with a config written to a temp dir.
- Standin: a Python stand-in of tests/tools (Schema Registry, STS/IMDS, proxy/TLS) on a free port.

Every peer runs on a free port, is waited for by condition with a deadline (never a bare
sleep), and is killed when the test ends, even when it fails.
"""
import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

SRCDIR = os.environ.get("KS_SRCDIR") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILDDIR = os.environ.get("KS_BUILDDIR") or os.path.join(SRCDIR, "build")
KINESINK = os.path.join(BUILDDIR, "src", "kinesink")
MOCKCLUSTER = os.path.join(BUILDDIR, "tests", "tools", "mockcluster")
FAKEKINESIS = os.path.join(BUILDDIR, "tests", "tools", "fakekinesis")
NODE_DIR = os.path.join(SRCDIR, "tests", "node")

_live = []


def _cleanup():
    for p in list(_live):
        p.stop()


atexit.register(_cleanup)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(cond, timeout=30.0, what="condition", interval=0.05):
    """Poll cond() until it returns a true value; fail with `what` after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class TempDir:
    def __init__(self):
        self.path = tempfile.mkdtemp(prefix="kinesink-test-")

    def file(self, name, text=None):
        p = os.path.join(self.path, name)
        if text is not None:
            with open(p, "w") as f:
                f.write(text)
        return p

    def remove(self):
        shutil.rmtree(self.path, ignore_errors=True)


class Peer:
    """A subprocess that is always stopped (atexit, SIGTERM, or explicitly)."""

    def __init__(self, argv, log, env=None, cwd=None, stdin=None, stdout=None):
        self.log_path = log
        self.logf = open(log, "wb")
        self.proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=stdin,
                                     stdout=stdout if stdout is not None else self.logf,
                                     stderr=self.logf, start_new_session=True)
        _live.append(self)

    def alive(self):
        return self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self in _live:
            _live.remove(self)
        self.logf.close()
        return self.proc.returncode

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def wait_port(self, port_file, what):
        """The port a peer wrote to port_file once listening; fails if the peer exited first."""
        port = wait_for(lambda: _read_int(port_file) or (not self.alive() and -1), 20, what + " to listen")
        if port < 0:
            raise AssertionError("%s exited: %s" % (what, self.log()))
        return port


class Standin(Peer):
    """A stand-in server of tests/tools (a Python script) that writes its port to a file."""

    def __init__(self, tmp, script, name, *args):
        port_file = tmp.file(name + ".port")
        super().__init__(["/usr/bin/python3", os.path.join(SRCDIR, "tests", "tools", script)] + list(args)
                         + ["--port-file", port_file], tmp.file(name + ".log"))
        self.port = self.wait_port(port_file, name + " stand-in")
        self.url = "http://127.0.0.1:%d" % self.port


class MockCluster(Peer):
    """librdkafka's mock cluster over TCP. topics: {name: partitions}."""

    def __init__(self, tmp, brokers=1, topics=None):
        argv = [MOCKCLUSTER, "--brokers", str(brokers)]
        for name, parts in (topics or {}).items():
            argv += ["--topic", "%s:%d" % (name, parts)]
        super().__init__(argv, tmp.file("mockcluster.log"), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        line = self.proc.stdout.readline().decode()
        if not line.startswith("BOOTSTRAP "):
            raise AssertionError("mockcluster did not start: %r %s" % (line, self.log()))
        self.bootstrap = line.split()[1]

    def command(self, cmd):
        self.proc.stdin.write((cmd + "\n").encode())
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().decode().strip()
        if answer != "OK":
            raise AssertionError("mockcluster %r: %s" % (cmd, answer))

    def down(self, broker):
        self.command("down %d" % broker)

    def up(self, broker):
        self.command("up %d" % broker)

    def create_topic(self, name, partitions):
        self.command("topic %s %d" % (name, partitions))

    def produce(self, topic, messages):
        """messages: iterable of (key, value, partition[, headers]); key/value str, bytes or None."""
        from confluent_kafka import Producer
        p = Producer({"bootstrap.servers": self.bootstrap, "linger.ms": 5, "acks": "all",
                      "enable.idempotence": True, "message.max.bytes": 8 << 20})
        n = 0
        for m in messages:
            key, value, part = m[0], m[1], m[2]
            kw = {"headers": m[3]} if len(m) > 3 else {}
            while True:
                try:
                    p.produce(topic, value=value, key=key, partition=part, **kw)
                    break
                except BufferError:
                    p.poll(0.1)
            n += 1
        left = p.flush(30)
        if left:
            raise AssertionError("%d messages not delivered to the mock cluster" % left)
        return n

    def committed(self, group, topic, partitions):
        from confluent_kafka import Consumer, TopicPartition
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": group})
        try:
            tps = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=15)
            return {tp.partition: tp.offset for tp in tps}
        finally:
            c.close()

    def consume_all(self, topic, partitions, timeout=20):
        """Every message of topic, by partition, in order (assigned from the beginning)."""
        from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "harness-reader",
                      "enable.partition.eof": True, "enable.auto.commit": False})
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        out = {p: [] for p in range(partitions)}
        eof = set()
        deadline = time.monotonic() + timeout
        try:
            while len(eof) < partitions and time.monotonic() < deadline:
                m = c.poll(0.5)
                if m is None:
                    continue
                if m.error():
                    if m.error().code() == -191:  # _PARTITION_EOF
                        eof.add(m.partition())
                    continue
                out[m.partition()].append(m)
        finally:
            c.close()
        return out


class KinesisMock(Peer):
    """The kinesis-mock emulator on a free loopback port. streams: {name: shards}."""

    def __init__(self, tmp, streams):
        self.port = free_port()
        env = dict(os.environ)
        env.update({
            "KINESIS_MOCK_PLAIN_PORT": str(self.port),
            "KINESIS_MOCK_TLS_PORT": str(free_port()),
            "INITIALIZE_STREAMS": ",".join("%s:%d" % kv for kv in streams.items()),
            "CREATE_STREAM_DURATION": "0ms",
            "LOG_LEVEL": "WARN",
        })
        main = os.path.join(NODE_DIR, "node_modules", "kinesis-local")
        if not os.path.exists(os.path.join(main, "main.js")):
            raise AssertionError("kinesis-mock is not installed: run scripts/setup.sh (npm ci in tests/node)")
        super().__init__(["node", "-r", os.path.join(NODE_DIR, "loopback.js"), "main.js"],
                         tmp.file("kinesis-mock.log"), env=env, cwd=main)
        self.endpoint = "http://127.0.0.1:%d" % self.port
        wait_for(lambda: port_open(self.port) or not self.alive(), 60, "kinesis-mock to listen")
        if not self.alive():
            raise AssertionError("kinesis-mock exited: " + self.log())
        for s in streams:
            wait_for(lambda: self._active(s), 30, "stream %s to be ACTIVE" % s)

    def client(self):
        import boto3
        return boto3.client("kinesis", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="AKIDTEST", aws_secret_access_key="testsecret")

    def _active(self, stream):
        try:
            d = self.client().describe_stream_summary(StreamName=stream)
            return d["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE"
        except Exception:
            return False

    def read_all(self, stream):
        """{shard_id: [(partition_key, data_bytes, sequence_number), ...]} in shard order."""
        k = self.client()
        out = {}
        for sh in k.list_shards(StreamName=stream)["Shards"]:
            it = k.get_shard_iterator(StreamName=stream, ShardId=sh["ShardId"],
                                      ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            recs = []
            while it:
                r = k.get_records(ShardIterator=it, Limit=10000)
                recs += [(x["PartitionKey"], x["Data"], x["SequenceNumber"]) for x in r["Records"]]
                if not r["Records"] and r.get("MillisBehindLatest", 0) == 0:
                    break
                it = r.get("NextShardIterator")
            out[sh["ShardId"]] = recs
        return out

    def read_records(self, stream):
        """Every record of every shard, as deaggregate() takes them: dicts with the shard, its
        hash-key range, sequence number, partition key and data (base64)."""
        import base64
        k = self.client()
        ranges = {sh["ShardId"]: sh["HashKeyRange"] for sh in k.list_shards(StreamName=stream)["Shards"]}
        out = []
        for shard, recs in self.read_all(stream).items():
            for key, data, seq in recs:
                out.append({"shard": shard, "start": ranges[shard]["StartingHashKey"],
                            "end": ranges[shard]["EndingHashKey"], "seq": seq, "partitionKey": key,
                            "data": base64.b64encode(data).decode()})
        return out

    def count(self, stream):
        return sum(len(v) for v in self.read_all(stream).values())


class FakeKinesis(Peer):
    """The tests' fault-injecting PutRecords endpoint; accepted entries are logged to a file."""

    def __init__(self, tmp, *args):
        self.accepted_log = tmp.file("fakekinesis.accepted")
        port_file = tmp.file("fakekinesis.port")
        if os.path.exists(port_file):  # left by an earlier endpoint in the same folder
            os.remove(port_file)
        args = list(args)
        if "--verify-sigv4" in args:  # signatures checked by botocore, not by the project's signer
            args += ["--sigv4-verifier", os.path.join(SRCDIR, "tests", "tools", "sigv4_verify.py")]
        super().__init__([FAKEKINESIS, "--port-file", port_file, "--log", self.accepted_log] + args,
                         tmp.file("fakekinesis.log"))
        self.port = self.wait_port(port_file, "fakekinesis")
        self.endpoint = "http://127.0.0.1:%d" % self.port

    def accepted(self):
        """[(partition_key, data_bytes)] in the order the endpoint accepted them. Read while the
        endpoint runs, the log may end in a line still being written: only whole lines count."""
        import base64
        out = []
        with open(self.accepted_log) as f:
            for line in f:
                if not line.endswith("\n"):
                    break
                seq, key, data = line.rstrip("\n").split("\t")[:3]
                out.append((key, base64.b64decode(data)))
        return out


class Registry(Standin):
    """The Schema Registry stand-in (tests/tools/registry_standin.py) serving a folder of schemas."""

    def __init__(self, tmp, schema_dir, *args):
        super().__init__(tmp, "registry_standin.py", "registry", "--dir", schema_dir, *args)

    def requests(self):
        import urllib.request
        with urllib.request.urlopen(self.url + "/_requests") as r:
            return r.read().decode().split()

    def proxy_404(self):
        """From now on answer schema requests as a proxy with no route to the registry would."""
        import urllib.request
        with urllib.request.urlopen(self.url + "/_proxy404") as r:
            r.read()


def _read_int(path):
    try:
        with open(path) as f:
            v = f.read().strip()
            return int(v) if v else 0
    except (OSError, ValueError):
        return 0


def config_text(props):
    return "".join("%s = %s\n" % (k, v) for k, v in props.items())


def base_config(cluster, endpoint, stream="s1", **extra):
    conf = {
        "stream": stream,
        "aws.region": "us-east-1",
        "endpoint": endpoint,
        "aws.credentials.access_key_id": "AKIDTEST",
        "aws.credentials.secret_access_key": "testsecret",
        "kafka.bootstrap.servers": cluster.bootstrap,
        "kafka.session.timeout.ms": "6000",
        "kafka.heartbeat.interval.ms": "500",
        "metrics.listen": "off",
        "batch.linger.ms": "20",
        "offsets.commit.interval.ms": "200", "log.level": os.environ.get("KS_LOG_LEVEL", "info"),
    }
    conf.update({k.replace("__", "."): v for k, v in extra.items()})
    return conf


class Kinesink(Peer):
    """The real binary running a config (dict or text) until it exits."""

    def __init__(self, tmp, conf, args=(), name="kinesink", env=None):
        path = tmp.file(name + ".conf", conf if isinstance(conf, str) else config_text(conf))
        super().__init__([KINESINK, "-c", path] + list(args), tmp.file(name + ".log"), env=env)

    def wait(self, timeout=60):
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop(signal.SIGKILL)
            raise AssertionError("kinesink did not exit within %ds:\n%s" % (timeout, self.log()[-3000:]))
        self.stop()
        return rc


def run_kinesink(tmp, conf, args=("--exit-at-eof",), timeout=60, name="kinesink"):
    k = Kinesink(tmp, conf, args, name)
    rc = k.wait(timeout)
    return rc, k.log()


def debezium_event(op, before, after, table="customers", ts=1700000000000, schema=False):
    payload = {"op": op, "before": before, "after": after, "ts_ms": ts,
               "source": {"connector": "mysql", "db": "inventory", "table": table, "ts_ms": ts}}
    if schema:
        return json.dumps({"schema": {"type": "struct", "name": "inventory.%s.Envelope" % table, "fields": []},
                           "payload": payload})
    return json.dumps(payload)


def http_get(url):
    """(status, body) of a GET; (0, "") while nothing answers (not listening yet, or gone)."""
    import urllib.error
    import urllib.request
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return 0, ""


def metrics(text):
    """{name (with its labels): integer value} of a Prometheus text exposition."""
    import re
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\S+) (-?\d+)$", text, re.M)}


def keyed_updates(n, keys, parts):
    """n Debezium updates over `keys` rows, as (key, value, partition); the row's version counts
    up per key and the key's partition is its id modulo parts."""
    version = {}
    out = []
    for i in range(n):
        k = i % keys
        version[k] = version.get(k, 0) + 1
        row = {"id": k, "v": version[k]}
        out.append((json.dumps({"id": k}, separators=(",", ":")), debezium_event("u", {"id": k, "v": version[k] - 1}, row),
                    k % parts))
    return out


def per_partition(msgs, parts):
    """{partition: number of messages} of (key, value, partition) messages: the offsets to commit."""
    return {p: sum(1 for m in msgs if m[2] == p) for p in range(parts)}


def check_once_in_order(seen, produced):
    """(partition_key, data) user records against produced (key, Debezium update, partition)
    messages: each row version exactly once, per key in Kafka order."""
    got, want = {}, {}
    for key, data in seen:
        got.setdefault(key, []).append(json.loads(data)["v"])
    for k, v, _ in produced:
        want.setdefault(k, []).append(json.loads(v)["after"]["v"])
    assert got.keys() == want.keys(), (sorted(got)[:5], sorted(want)[:5])
    for k in want:
        assert got[k] == want[k], "key %s: got %s, want %s" % (k, got[k][:20], want[k][:20])


def check_stream(accepted, produced, exactly_once=True):
    """Every produced update arrived; per key in Kafka order; each exactly once when asked; and
    each key's last record is its newest version (what an upsert consumer is left holding)."""
    got = {}
    for key, data in accepted:
        got.setdefault(key, []).append(json.loads(data)["v"])
    want = {}
    for k, v, _ in produced:
        want.setdefault(k, []).append(json.loads(v)["after"]["v"])
    for k, versions in want.items():
        seen = got.get(k, [])
        if exactly_once:
            assert seen == versions, "key %s: got %s, want %s" % (k, seen[:20], versions[:20])
        else:
            # At least once: duplicates only replay a suffix, order never goes back except at a replay.
            assert set(seen) >= set(versions), "key %s lost versions %s" % (k, sorted(set(versions) - set(seen))[:10])
            last = 0
            for v in seen:
                assert v == last + 1 or v <= last, "key %s: %s after %s (reordered)" % (k, v, last)
                last = max(last, v)
            # A replay must run to the end: 1,2,3,4 then 2 leaves an upsert consumer on row v2.
            assert seen[-1] == versions[-1], "key %s ends on v%s, not its newest v%s: %s" % (
                k, seen[-1], versions[-1], seen[-20:])


def delivered(accepted, produced):
    """Whether every produced (key, version) of Debezium updates is among the accepted records and
    each key's last accepted record is its newest version: a condition to wait for."""
    got, want = {}, {}
    for key, data in accepted:
        got.setdefault(key, []).append(json.loads(data)["v"])
    for k, v, _ in produced:
        want.setdefault(k, []).append(json.loads(v)["after"]["v"])
    return all(k in got and set(got[k]) >= set(vs) and got[k][-1] == vs[-1] for k, vs in want.items())


def main(tests):
    """Run test functions (name -> fn(tmp)); print a line per test and a summary; exit 0/1."""
    only = sys.argv[1:]
    passed = failed = 0
    for name, fn in tests:
        if only and name not in only:
            continue
        tmp = TempDir()
        t0 = time.monotonic()
        try:
            fn(tmp)
            passed += 1
            print("PASS %s (%.1fs)" % (name, time.monotonic() - t0), flush=True)
            tmp.remove()
        except Exception:
            failed += 1
            print("FAIL %s (%.1fs)\n%s" % (name, time.monotonic() - t0, traceback.format_exc()), flush=True)
            for f in sorted(os.listdir(tmp.path)):
                if f.endswith(".log"):
                    with open(os.path.join(tmp.path, f), "rb") as fh:
                        print("---- %s (tail)\n%s" % (f, fh.read()[-4000:].decode("utf-8", "replace")))
        finally:
            _cleanup()
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


def deaggregate(records):
    """User records of Kinesis records (dicts as KinesisMock.read_records gives them), taken apart
    by the awslabs deaggregator (npm aws-kinesis-agg, tests/node/deagg.js, checksums checked):
    dicts with shard, seq, sub, partitionKey, data (bytes), hash, and dropped: whether a KCL
    consumer drops it (an aggregate's user record hashing outside the shard it was read from)."""
    import base64
    script = os.path.join(NODE_DIR, "deagg.js")
    if not os.path.exists(os.path.join(NODE_DIR, "node_modules", "aws-kinesis-agg")):
        raise AssertionError("aws-kinesis-agg is not installed: run scripts/setup.sh (npm ci in tests/node)")
    text = "".join(json.dumps(r) + "\n" for r in records)
    p = subprocess.run(["node", script], input=text.encode(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=120)
    if p.returncode != 0:
        raise AssertionError("deagg.js failed: " + p.stderr.decode("utf-8", "replace"))
    out = []
    for line in p.stdout.decode().splitlines():
        r = json.loads(line)
        if "error" in r:
            raise AssertionError("the deaggregator rejected record %s of %s: %s" % (r["seq"], r["shard"], r["error"]))
        r["data"] = base64.b64decode(r["data"])
        out.append(r)
    return out
