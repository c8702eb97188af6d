"""A backfill's progress with --exit-at-eof, against the mock cluster over TCP and the tests'
Kinesis endpoint: the figures of the log lines (total = the records produced, or those past the
committed offsets; done reaching it; partitions finished), and the live line on a terminal
(a pseudo-terminal), redrawn in place, ending at 100 %, never mixed into the log lines and gone
at exit."""
import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import (KINESINK, FakeKinesis, Kinesink, MockCluster, base_config, config_text,  # noqa: E402
                     keyed_updates, main, per_partition, run_kinesink, wait_for)

PARTS = 4
FIGURES = re.compile(r"backfill: (\d+) of (\d+) records \((\d+)\.(\d) %\), (\d+) records/s, ETA (\S+), "
                     r"(\d+) of (\d+) partitions? finished")
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (ERROR|WARN |INFO |DEBUG) \[\w+\] ")


def figures(text):
    """Every backfill figure in text: (done, total, permille, rate, eta, finished, assigned)."""
    return [(int(m[1]), int(m[2]), int(m[3]) * 10 + int(m[4]), int(m[5]), m[6], int(m[7]), int(m[8]))
            for m in FIGURES.finditer(text)]


def check_run(log, total):
    """The figures of a run that had `total` records to do over PARTS partitions."""
    periodic = [l for l in log.splitlines() if "progress: consumed" in l]
    assert periodic and all("; backfill: " in l for l in periodic), "no backfill in the progress lines:\n" + log[-3000:]
    # Done is what may be committed: never more than Kinesis acknowledged (one record a message).
    for line in periodic:
        put = int(re.search(r", put (\d+),", line).group(1))
        assert all(f[0] <= put for f in figures(line)), line
    exits = [l for l in log.splitlines() if "at its end, acknowledged and committed: leaving the group" in l]
    assert len(exits) == 1, log[-3000:]
    seen = figures(log)
    # Once the partitions are assigned (one assignment of all four), the total is what was to do.
    measured = [f for f in seen if f[6] == PARTS]
    assert measured, log[-3000:]
    assert all(f[1] == total for f in measured), [f for f in measured if f[1] != total][:5]
    dones = [f[0] for f in measured]
    assert dones == sorted(dones), "done went back: %s" % dones
    assert all(f[0] <= f[1] and f[5] <= f[6] for f in seen), seen
    # The last figures, in the exit line: everything done, every partition finished.
    last = figures(exits[0])
    assert last and last[0][:3] == (total, total, 1000) and last[0][4] == "0:00" and last[0][5:] == (PARTS, PARTS), \
        exits[0]
    return measured


def test_log_lines_carry_the_figures(tmp):
    cluster = MockCluster(tmp, topics={"t": PARTS})
    fk = FakeKinesis(tmp)
    msgs = keyed_updates(3000, 40, PARTS)
    cluster.produce("t", msgs)
    conf = base_config(cluster, fk.endpoint, type="upsert", topic="t", **{"stats.interval.ms": "20"})
    rc, log = run_kinesink(tmp, conf, timeout=120)
    assert rc == 0, log[-3000:]
    assert len(fk.accepted()) == 3000
    measured = check_run(log, 3000)
    # Before the end, the figures showed work not yet done (the run was seen going).
    assert any(f[0] < 3000 for f in measured) or len(measured) == 1, measured[:5]

    # A second backfill counts only what is past the committed offsets.
    more = keyed_updates(1000, 40, PARTS)
    cluster.produce("t", more)
    assert cluster.committed("kinesink", "t", PARTS) == per_partition(msgs, PARTS)
    rc, log = run_kinesink(tmp, conf, timeout=120, name="second")
    assert rc == 0, log[-3000:]
    check_run(log, 1000)
    assert len(fk.accepted()) == 4000


def test_rebalance_moves_the_total(tmp):
    """A second worker joins: the first one's revoked partitions leave its total. The second
    finishes and leaves: the partitions come back with nothing left past their committed
    offsets, adding 0. The first finishes with everything it still owns done."""
    cluster = MockCluster(tmp, topics={"t": PARTS})
    hold = tmp.file("hold", "")
    hold_b = tmp.file("hold_b", "")
    fa = FakeKinesis(tmp, "--hold-file", hold)  # the first worker's Kinesis throttles everything
    fb = FakeKinesis(tmp, "--hold-file", hold_b)  # the second's, until the first was seen with 2
    msgs = keyed_updates(2000, 40, PARTS)
    cluster.produce("t", msgs)
    props = {"stats.interval.ms": "50", "rebalance.drain.ms": "100", "retry.backoff.ms": "20",
             "retry.backoff.max.ms": "100", "delivery.timeout.ms": "0"}
    a = Kinesink(tmp, base_config(cluster, fa.endpoint, type="upsert", topic="t", **props), ["--exit-at-eof"],
                 name="a")
    wait_for(lambda: any(f[1:2] + f[5:] == (2000, 0, PARTS) for f in figures(a.log())), 60,
             "the first worker to measure 2000 records on 4 partitions")
    b = Kinesink(tmp, base_config(cluster, fb.endpoint, type="upsert", topic="t", **props), ["--exit-at-eof"],
                 name="b")
    # The second worker finishes only once the first showed its figures for the 2 partitions it
    # kept (else it could come and go between two of the first's progress lines).
    wait_for(lambda: any(f[1:2] + f[6:] == (1000, 2) for f in figures(a.log())) or not b.alive(), 60,
             "the first worker's figures on the 2 partitions it kept")
    os.unlink(hold_b)
    rc = b.wait(120)
    assert rc == 0, b.log()[-3000:]
    exit_b = [l for l in b.log().splitlines() if "leaving the group" in l]
    assert exit_b and figures(exit_b[0])[0][:3] == (1000, 1000, 1000) and figures(exit_b[0])[0][5:] == (2, 2), \
        b.log()[-3000:]
    wait_for(lambda: "assigned 2 partitions (4 in total)" in a.log(), 60, "the partitions back to the first worker")
    wait_for(lambda: any(f[1:2] + f[6:] == (1000, PARTS) for f in figures(a.log())), 30,
             "the first worker's figures after the partitions came back")
    os.unlink(hold)
    rc = a.wait(120)
    log = a.log()
    assert rc == 0, log[-3000:]
    seen = [(f[1], f[6]) for f in figures(log) if f[6]]
    # 2,000 on 4 partitions, then 1,000 on the 2 left, then the same 1,000 on 4 again.
    steps = [x for i, x in enumerate(seen) if i == 0 or seen[i - 1] != x]
    assert steps == [(2000, 4), (1000, 2), (1000, 4)], steps
    exit_a = [l for l in log.splitlines() if "leaving the group" in l]
    assert exit_a and figures(exit_a[0])[0][:3] == (1000, 1000, 1000) and figures(exit_a[0])[0][5:] == (4, 4), \
        exit_a
    assert cluster.committed("kinesink", "t", PARTS) == per_partition(msgs, PARTS)


def test_nothing_to_do_is_done_at_once(tmp):
    """Every partition empty: the total is 0, every partition finished, 100 %."""
    cluster = MockCluster(tmp, topics={"t": PARTS})
    fk = FakeKinesis(tmp)
    conf = base_config(cluster, fk.endpoint, type="upsert", topic="t", **{"stats.interval.ms": "20"})
    rc, log = run_kinesink(tmp, conf, timeout=60)
    assert rc == 0, log[-3000:]
    check_run(log, 0)


def screen(raw):
    """What a terminal keeps of raw output: lines, with \\r (column 0), ESC[K (erase to the end
    of the line) and \\n applied; any other escape sequence fails the test."""
    lines, cur, col = [], [], 0
    i = 0
    while i < len(raw):
        c = raw[i]
        if raw.startswith("\x1b[K", i):
            del cur[col:]
            i += 3
            continue
        assert c != "\x1b", "unexpected escape sequence %r" % raw[i:i + 8]
        if c == "\r":
            col = 0
        elif c == "\n":
            lines.append("".join(cur))
            cur, col = [], 0
        else:
            if col < len(cur):
                cur[col] = c
            else:
                cur.append(c)
            col += 1
        i += 1
    return lines, "".join(cur)


def run_on_terminal(tmp, conf, timeout=120, term="xterm"):
    """Run kinesink --exit-at-eof with stderr (and stdout) on a pseudo-terminal 200 columns wide;
    (exit code, everything it wrote)."""
    path = tmp.file("kinesink.conf", config_text(conf))
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
    proc = subprocess.Popen([KINESINK, "-c", path, "--exit-at-eof"], stdin=subprocess.DEVNULL, stdout=slave,
                            stderr=slave, start_new_session=True, env=dict(os.environ, TERM=term))
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            assert left > 0, "kinesink did not exit within %ds:\n%s" % (timeout, out[-3000:].decode("utf-8", "replace"))
            r, _, _ = select.select([master], [], [], left)
            if not r:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every writer of the terminal is gone
                break
            if not chunk:
                break
            out += chunk
        rc = proc.wait(timeout=max(1, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        os.close(master)
    with open(tmp.file("kinesink.log"), "wb") as f:  # shown when the test fails
        f.write(out)
    return rc, out.decode("utf-8", "replace")


def test_live_line_on_a_terminal(tmp):
    cluster = MockCluster(tmp, topics={"t": PARTS})
    fk = FakeKinesis(tmp)
    msgs = keyed_updates(3000, 40, PARTS)
    cluster.produce("t", msgs)
    conf = base_config(cluster, fk.endpoint, type="upsert", topic="t")
    rc, out = run_on_terminal(tmp, conf)
    assert rc == 0, out[-3000:]
    assert len(fk.accepted()) == 3000
    # Drawn in place: a carriage return, the figures, the rest of the line erased; redrawn.
    draws = re.findall(r"\rbackfill: ([^\r\n\x1b]*)\x1b\[K", out)
    assert len(draws) >= 2, out[-3000:]
    last = figures("backfill: " + draws[-1])
    assert last and last[0][:3] == (3000, 3000, 1000) and last[0][5:] == (PARTS, PARTS), draws[-1]
    # The log lines stay whole, and the live line is gone at exit.
    lines, rest = screen(out)
    assert rest == "", repr(rest)
    text = [l for l in lines if l.strip()]
    assert text and all(LOG_LINE.match(l) for l in text), [l for l in text if not LOG_LINE.match(l)][:5]
    assert not any("backfill: " in l and "leaving the group" not in l for l in text), [l for l in text if "backfill" in l][:5]


def test_no_live_line_on_a_dumb_terminal(tmp):
    """TERM=dumb cannot erase a line: log lines only."""
    cluster = MockCluster(tmp, topics={"t": 2})
    fk = FakeKinesis(tmp)
    cluster.produce("t", keyed_updates(200, 10, 2))
    rc, out = run_on_terminal(tmp, base_config(cluster, fk.endpoint, type="upsert", topic="t"), term="dumb")
    assert rc == 0, out[-3000:]
    assert "\x1b" not in out and "\rbackfill" not in out, repr(out[-500:])
    assert figures(out) and figures(out)[-1][:3] == (200, 200, 1000)


def test_no_live_line_off_a_terminal(tmp):
    """stderr to a file: log lines only, never a carriage return or an escape sequence."""
    cluster = MockCluster(tmp, topics={"t": 2})
    fk = FakeKinesis(tmp)
    cluster.produce("t", keyed_updates(200, 10, 2))
    rc, log = run_kinesink(tmp, base_config(cluster, fk.endpoint, type="upsert", topic="t"), timeout=60)
    assert rc == 0, log[-3000:]
    assert "\r" not in log and "\x1b" not in log, repr(log[-500:])
    assert figures(log) and figures(log)[-1][:3] == (200, 200, 1000)


if __name__ == "__main__":
    main([(n, f) for n, f in globals().items() if n.startswith("test_")])
