"""examples/monitoring against the real endpoint: every metric (and every label value matched) that
the Grafana dashboard and the Prometheus alert rules use is one a running kinesink serves on
/metrics, and promtool accepts the rules and passes their unit tests."""
import json
import os
import re
import subprocess
import sys
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import (SRCDIR, FakeKinesis, Kinesink, MockCluster, base_config, debezium_event,  # noqa: E402
                     free_port, main, wait_for)

MONITORING = os.path.join(SRCDIR, "examples", "monitoring")
RULES = os.path.join(MONITORING, "kinesink-alerts.yml")
RULE_TESTS = os.path.join(MONITORING, "kinesink-alerts.test.yml")
DASHBOARD = os.path.join(MONITORING, "kinesink-dashboard.json")
# Series Prometheus makes itself for every scrape target: not kinesink's to serve.
PROMETHEUS_OWN = {"up"}
# Labels Prometheus attaches to every series of a target.
TARGET_LABELS = {"job", "instance"}
KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left",
            "group_right", "inf", "nan"}
IDENT = r"[a-zA-Z_:][a-zA-Z0-9_:]*"


def selectors(expr):
    """[(metric, [(label, op, value)])] of a PromQL expression; a bare metric has no matchers."""
    out = []
    e = re.sub(r"\[[^\]]*\]", " ", expr)  # ranges and subqueries ([5m], [$__rate_interval])

    def take(m):
        matchers = re.findall(r'(%s)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"' % IDENT, m.group(2))
        out.append((m.group(1), matchers))
        return " "
    e = re.sub(r"(%s)\s*\{([^}]*)\}" % IDENT, take, e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    for m in re.finditer(r"(?<![\w$.])(%s)(\s*\()?" % IDENT, e):
        if not m.group(2) and m.group(1) not in KEYWORDS:
            out.append((m.group(1), []))
    return out


def dashboard_exprs():
    with open(DASHBOARD) as f:
        d = json.load(f)
    exprs = [t["expr"] for p in d["panels"] for t in p.get("targets", [])]
    for v in d["templating"]["list"]:
        if v["type"] == "query":
            m = re.fullmatch(r"label_values\((.*),\s*\w+\)", v["query"]["query"])
            assert m, v
            exprs.append(m.group(1))
    return exprs


def rule_exprs():
    import yaml
    with open(RULES) as f:
        rules = yaml.safe_load(f)
    return [r["expr"] for g in rules["groups"] for r in g["rules"]]


def scrape_running_kinesink(tmp):
    """/metrics of a kinesink that consumed, put (some throttled) and skipped a bad record."""
    cluster = MockCluster(tmp, topics={"t": 2})
    fk = FakeKinesis(tmp, "--fail-rate", "0.2", "--seed", "7")
    msgs = [(json.dumps({"id": i}), debezium_event("c", None, {"id": i}), i % 2) for i in range(100)]
    msgs.append(('{"id":-1}', "not json", 0))
    cluster.produce("t", msgs)
    port = free_port()
    k = Kinesink(tmp, base_config(cluster, fk.endpoint, type="upsert", topic="t", **{
        "metrics.listen": "127.0.0.1:%d" % port, "errors.policy": "skip", "retry.backoff.ms": "5"}))
    url = "http://127.0.0.1:%d/metrics" % port

    def get():
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.read().decode()
        except OSError:
            return ""
    text = wait_for(lambda: (lambda t: "kinesink_records_put_total 100\n" in t and
                             'kinesink_partition_lag{topic="t",partition="1"}' in t and
                             'kinesink_partition_seconds_behind{topic="t",partition="1"}' in t and t)(get()),
                    60, "100 records put and partition metrics on /metrics")
    assert k.stop() == 0
    return text


def served(text):
    """{metric: {label: {values}}} of a Prometheus text exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"(%s)(?:\{(.*)\})? " % IDENT, line)
        assert m, line
        labels = out.setdefault(m.group(1), {})
        for name, value in re.findall(r'(%s)="((?:[^"\\]|\\.)*)"' % IDENT, m.group(2) or ""):
            labels.setdefault(name, set()).add(value)
    return out


def test_every_metric_used_is_served(tmp):
    metrics = served(scrape_running_kinesink(tmp))
    problems, used = [], set()
    for source, exprs in (("dashboard", dashboard_exprs()), ("alerts", rule_exprs())):
        for expr in exprs:
            for name, matchers in selectors(expr):
                used.add(name)
                if name in PROMETHEUS_OWN:
                    continue
                if name not in metrics:
                    problems.append("%s: %s is not served (in %s)" % (source, name, expr))
                    continue
                for label, op, value in matchers:
                    if label in TARGET_LABELS:
                        continue
                    have = metrics[name].get(label)
                    if have is None:
                        problems.append("%s: %s has no label %s (in %s)" % (source, name, label, expr))
                        continue
                    wanted = value.split("|") if op in ("=~", "!~") else [value]
                    problems += ["%s: %s{%s=\"%s\"} is not served (in %s)" % (source, name, label, w, expr)
                                 for w in wanted if w not in have]
    assert not problems, "\n".join(problems)
    # The parser is not vacuous: the main families were found where they are used.
    assert {"kinesink_partition_lag", "kinesink_put_latency_seconds_bucket", "kinesink_records_bad_total",
            "kinesink_records_put_failed_total", "kinesink_kinesis_reachable", "kinesink_assigned_partitions",
            "kinesink_record_latency_seconds_bucket", "kinesink_partition_seconds_behind",
            "kinesink_record_latency_unmeasured_total", "up"} <= used, used
    assert len(used) >= 20, used


def test_selector_parser(tmp):
    assert selectors('sum by (job, le) (rate(a_b{x="1",y=~"p|q"}[5m])) / on(job) c and d offset 5m > 2') == [
        ("a_b", [("x", "=", "1"), ("y", "=~", "p|q")]), ("c", []), ("d", [])]
    assert selectors("histogram_quantile(0.99, sum by (le) (rate(h_bucket[$__rate_interval])))") == [("h_bucket", [])]


def test_promtool_accepts_and_tests_the_rules(tmp):
    for args in (["check", "rules", RULES], ["test", "rules", RULE_TESTS]):
        try:
            p = subprocess.run(["promtool"] + args, capture_output=True, text=True, timeout=120, cwd=MONITORING)
        except FileNotFoundError:
            raise AssertionError("promtool is missing: run scripts/setup.sh (Debian package prometheus)")
        assert p.returncode == 0, p.stdout + p.stderr
        assert "SUCCESS" in p.stdout, p.stdout


if __name__ == "__main__":
    main([(n, f) for n, f in sorted(globals().items()) if n.startswith("test_")])
