"""examples/kubernetes without kubectl or a cluster: every manifest parses (python3-yaml) and has
the fields its kind requires, and the pieces agree with each other and with the configuration
kinesink itself reads (`kinesink --check` on the ConfigMap's file):
- the Deployment's selector, labels, ports, probes, volumes and service account fit together, and
  its terminationGracePeriodSeconds covers shutdown.timeout.ms plus rebalance.drain.ms;
- the PodDisruptionBudget selects the Deployment's pods and lets one go at a time;
- the KEDA ScaledObject scales that Deployment on that group's lag for that topic, never past one
  worker per partition, its trigger metadata all strings (KEDA's metadata is a string map)."""
import glob
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import KINESINK, SRCDIR, main  # noqa: E402

EXAMPLES = os.path.join(SRCDIR, "examples", "kubernetes")
# The fields each kind must have (dotted paths), and the only kinds the examples may hold.
REQUIRED = {
    ("v1", "ServiceAccount"): [],
    ("v1", "ConfigMap"): ["data"],
    ("apps/v1", "Deployment"): ["spec.selector.matchLabels", "spec.template.metadata.labels",
                                "spec.template.spec.containers"],
    ("policy/v1", "PodDisruptionBudget"): ["spec.selector.matchLabels"],
    ("keda.sh/v1alpha1", "ScaledObject"): ["spec.scaleTargetRef.name", "spec.triggers"],
}
DNS1123 = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
# kinesink's own default (consumer.c) when kafka.auto.offset.reset is not set.
OFFSET_RESET_DEFAULT = "earliest"
# What the last commit and the group's LeaveGroup may take after the drains.
CLOSE_MARGIN_S = 5


def get(doc, path):
    for part in path.split("."):
        if not isinstance(doc, dict) or part not in doc:
            return None
        doc = doc[part]
    return doc


def manifests():
    import yaml
    files = sorted(glob.glob(os.path.join(EXAMPLES, "*.yaml")))
    assert files, EXAMPLES
    out = []
    for path in files:
        with open(path) as f:
            out += [(os.path.basename(path), d) for d in yaml.safe_load_all(f) if d is not None]
    return out


def check_shape(docs):
    """Every document's kind is known and has its required fields. Returns the problems."""
    problems = []
    for name, d in docs:
        where = "%s: %s %s" % (name, d.get("kind"), get(d, "metadata.name"))
        key = (d.get("apiVersion"), d.get("kind"))
        if key not in REQUIRED:
            problems.append("%s: unknown apiVersion/kind %s" % (where, key))
            continue
        if not isinstance(get(d, "metadata.name"), str) or not DNS1123.fullmatch(d["metadata"]["name"]):
            problems.append("%s: metadata.name missing or not a DNS-1123 name" % where)
        problems += ["%s: %s missing or empty" % (where, p) for p in REQUIRED[key] if not get(d, p)]
    return problems


def one(docs, kind):
    found = [d for _, d in docs if d.get("kind") == kind]
    assert len(found) == 1, "expected one %s, found %d" % (kind, len(found))
    return found[0]


def effective_config(tmp, text):
    """The configuration kinesink runs with, as `kinesink --check` prints it."""
    path = tmp.file("sink.conf", text)
    p = subprocess.run([KINESINK, "-c", path, "--check"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stdout + p.stderr
    return dict(line.split(" = ", 1) for line in p.stdout.splitlines() if " = " in line)


def check_fleet(tmp, docs):
    """The pieces against each other and the configuration. Returns the problems."""
    problems = []
    dep, cm, sa = one(docs, "Deployment"), one(docs, "ConfigMap"), one(docs, "ServiceAccount")
    pod = dep["spec"]["template"]
    labels = pod["metadata"]["labels"]
    if not dep["spec"]["selector"]["matchLabels"].items() <= labels.items():
        problems.append("Deployment: selector does not select its own pods")
    spec = pod["spec"]
    if spec.get("serviceAccountName") != sa["metadata"]["name"]:
        problems.append("Deployment: serviceAccountName is not the ServiceAccount")
    (c,) = spec["containers"]
    for field in ("name", "image", "args"):
        if not c.get(field):
            problems.append("container: %s missing" % field)
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    for probe in ("readinessProbe", "livenessProbe"):
        port = get(c, probe + ".httpGet.port")
        if port not in ports and port not in ports.values():
            problems.append("%s: port %r is not a container port" % (probe, port))
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
    # -c PATH: a key of the mounted ConfigMap.
    conf_path = c["args"][c["args"].index("-c") + 1]
    mount = os.path.dirname(conf_path)
    vol = volumes.get(mounts.get(mount))
    if not vol or get(vol, "configMap.name") != cm["metadata"]["name"] or \
            os.path.basename(conf_path) not in cm["data"]:
        problems.append("-c %s is not a file of the mounted ConfigMap" % conf_path)
        return problems
    conf = effective_config(tmp, cm["data"][os.path.basename(conf_path)])
    metrics_port = int(conf["metrics.listen"].rsplit(":", 1)[1])
    if ports.get("metrics") != metrics_port or \
            str(get(pod, "metadata.annotations")["prometheus.io/port"]) != str(metrics_port):
        problems.append("metrics port: container %s, annotation %s, metrics.listen %s" % (
            ports.get("metrics"), get(pod, "metadata.annotations"), conf["metrics.listen"]))
    grace = spec.get("terminationGracePeriodSeconds", 30)
    need = (int(conf["shutdown.timeout.ms"]) + int(conf["rebalance.drain.ms"])) / 1000 + CLOSE_MARGIN_S
    if grace < need:
        problems.append("terminationGracePeriodSeconds %s < shutdown.timeout.ms + rebalance.drain.ms + %d s = %g" % (
            grace, CLOSE_MARGIN_S, need))

    pdb = one(docs, "PodDisruptionBudget")
    if ("minAvailable" in pdb["spec"]) == ("maxUnavailable" in pdb["spec"]):
        problems.append("PodDisruptionBudget: exactly one of minAvailable and maxUnavailable")
    if pdb["spec"].get("maxUnavailable") != 1:
        problems.append("PodDisruptionBudget: more than one worker at a time may go")
    if not pdb["spec"]["selector"]["matchLabels"].items() <= labels.items():
        problems.append("PodDisruptionBudget: does not select the workers")

    so = one(docs, "ScaledObject")
    ref = so["spec"]["scaleTargetRef"]
    if ref["name"] != dep["metadata"]["name"] or ref.get("kind", "Deployment") != "Deployment":
        problems.append("ScaledObject: scaleTargetRef is not the Deployment")
    lo, hi = so["spec"].get("minReplicaCount", 0), so["spec"].get("maxReplicaCount")
    if not (isinstance(hi, int) and isinstance(lo, int) and 1 <= lo <= hi):
        problems.append("ScaledObject: want 1 <= minReplicaCount <= maxReplicaCount, got %r, %r" % (lo, hi))
    (t,) = so["spec"]["triggers"]
    md = t.get("metadata", {})
    if t.get("type") != "kafka":
        problems.append("ScaledObject: the trigger is not KEDA's Kafka scaler")
    problems += ["ScaledObject: metadata.%s is not a string" % k for k, v in md.items() if not isinstance(v, str)]
    want = {"bootstrapServers": conf.get("kafka.bootstrap.servers"), "consumerGroup": conf.get("kafka.group.id"),
            "topic": conf.get("topic"),
            "offsetResetPolicy": conf.get("kafka.auto.offset.reset", OFFSET_RESET_DEFAULT)}
    problems += ["ScaledObject: metadata.%s is %r, the configuration says %r" % (k, md.get(k), v)
                 for k, v in want.items() if md.get(k) != v]
    if md.get("allowIdleConsumers", "false") != "false":
        problems.append("ScaledObject: allowIdleConsumers lets workers outnumber partitions")
    if not re.fullmatch(r"[1-9][0-9]*", str(md.get("lagThreshold", ""))):
        problems.append("ScaledObject: lagThreshold is not a positive integer")
    return problems


def test_manifests_have_their_required_fields(tmp):
    docs = manifests()
    assert {d["kind"] for _, d in docs} >= {"Deployment", "PodDisruptionBudget", "ScaledObject", "ConfigMap"}
    problems = check_shape(docs)
    assert not problems, "\n".join(problems)


def test_the_pieces_agree(tmp):
    problems = check_fleet(tmp, manifests())
    assert not problems, "\n".join(problems)


def test_the_checks_find_faults(tmp):
    """Each check fails on the fault it names (on copies of the examples)."""
    import copy

    def broken(change):
        docs = copy.deepcopy(manifests())
        change({d["kind"]: d for _, d in docs})
        return check_shape(docs) or check_fleet(tmp, docs)

    def grace(k):
        k["Deployment"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 40

    def idle(k):
        k["ScaledObject"]["spec"]["triggers"][0]["metadata"]["allowIdleConsumers"] = "true"

    def group(k):
        k["ScaledObject"]["spec"]["triggers"][0]["metadata"]["consumerGroup"] = "another"

    def number(k):
        k["ScaledObject"]["spec"]["triggers"][0]["metadata"]["lagThreshold"] = 50000

    def pdb(k):
        k["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"] = {"app": "other"}

    def drain(k):
        k["ConfigMap"]["data"]["sink.conf"] += "rebalance.drain.ms = 60000\n"

    def required(k):
        del k["ScaledObject"]["spec"]["scaleTargetRef"]["name"]
        k["ScaledObject"]["spec"]["scaleTargetRef"]["kind"] = "Deployment"

    for fault, want in ((grace, "terminationGracePeriodSeconds"), (idle, "allowIdleConsumers"),
                        (group, "consumerGroup"), (number, "lagThreshold is not a string"),
                        (pdb, "does not select the workers"), (drain, "terminationGracePeriodSeconds"),
                        (required, "spec.scaleTargetRef.name missing")):
        problems = broken(fault)
        assert any(want in p for p in problems), (fault.__name__, problems)


if __name__ == "__main__":
    main([(n, f) for n, f in sorted(globals().items()) if n.startswith("test_")])
