"""The harness's delivery checks against made-up deliveries: what they must refuse (a lost
version, a key out of order, a stale last record after a replay) and what they must accept
(duplicates that replay a suffix to its end). A check that accepts everything proves nothing."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import check_stream, debezium_event, delivered, main  # noqa: E402


def produced(versions, key='{"id":1}'):
    return [(key, debezium_event("u", {"id": 1, "v": v - 1}, {"id": 1, "v": v}), 0) for v in versions]


def accepted(versions, key='{"id":1}'):
    return [(key, json.dumps({"id": 1, "v": v}).encode()) for v in versions]


def refused(seen, exactly_once):
    try:
        check_stream(accepted(seen), produced([1, 2, 3, 4]), exactly_once=exactly_once)
    except AssertionError as e:
        return str(e)
    return None


def test_at_least_once_refuses_a_stale_tail(tmp):
    why = refused([1, 2, 3, 4, 2], exactly_once=False)
    assert why and "ends on v2, not its newest v4" in why, why
    assert not delivered(accepted([1, 2, 3, 4, 2]), produced([1, 2, 3, 4]))


def test_at_least_once_accepts_a_replayed_suffix(tmp):
    assert refused([1, 2, 3, 4, 3, 4], exactly_once=False) is None
    assert refused([1, 2, 1, 2, 3, 4], exactly_once=False) is None
    assert delivered(accepted([1, 2, 3, 4, 3, 4]), produced([1, 2, 3, 4]))


def test_at_least_once_refuses_loss_and_reordering(tmp):
    assert "lost versions [3]" in refused([1, 2, 4], exactly_once=False)
    assert "reordered" in refused([1, 3, 2, 4], exactly_once=False)
    assert not delivered(accepted([1, 2, 4]), produced([1, 2, 3, 4]))


def test_exactly_once_refuses_a_duplicate(tmp):
    assert refused([1, 2, 3, 4, 4], exactly_once=True)
    assert refused([1, 2, 3, 4], exactly_once=True) is None


if __name__ == "__main__":
    main([(n, f) for n, f in sorted(globals().items()) if n.startswith("test_")])
