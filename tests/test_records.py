import pytest

from edgebench.records import RecordWriter, outcome_of, read_records
from edgebench.traffic import SendGuard, api_token, pool_size


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (202, "accepted"),
        (422, "allocation_failure"),
        (429, "rate_limited"),
        (400, "bad_request"),
        (401, "unauthorized"),
        (404, "client_error"),
        (500, "server_error"),
        (503, "server_error"),
        (0, "transport_error"),
    ],
)
def test_every_status_has_its_own_category(status, outcome):
    assert outcome_of(status) == outcome


def test_records_are_buffered_then_written_and_a_torn_line_is_skipped(tmp_path):
    path = tmp_path / "requests-w0.jsonl"
    writer = RecordWriter(path)
    writer.add({"index": 0, "outcome": "accepted"})
    assert path.read_bytes() == b""
    writer.flush()
    writer.add({"index": 1, "outcome": "rate_limited"})
    writer.close()
    with path.open("ab") as torn:
        torn.write(b'{"index": 2, "outc')  # a process killed mid-write
    records, skipped = read_records(path)
    assert [r["index"] for r in records] == [0, 1]
    assert skipped == 1


@pytest.mark.parametrize(
    ("value", "token"),
    [("abc-123", "abc-123"), ("token abc-123", "abc-123"), (" token token x ", "x"), ("", None)],
)
def test_the_token_is_read_from_the_environment_with_a_doubled_prefix_tolerated(
    monkeypatch, value, token
):
    monkeypatch.setenv("EDGEGAP_API_TOKEN", value)
    assert api_token() == token


def test_the_user_pool_follows_rate_and_latency():
    assert pool_size(40, 0.005, [1.0]) == 4
    assert pool_size(40, 0.5, [1.0]) == 42
    assert pool_size(400, 0.1, [0.5, 0.5]) == 82
    assert pool_size(5, 0.01, [0.8, 0.2]) == 20
    assert pool_size(5, 0.01, [0.8, 0.2], processes=2) == 40


def test_the_send_guard_holds_sends_to_the_budget_in_any_window_after_the_answers():
    now = [0.0]
    guard = SendGuard(3, 1.0, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))
    sends = []
    for latency in (0.0, 0.25, 0.0, 0.0, 0.0, 0.0, 0.0):
        with guard.turn():
            sends.append(now[0])
            now[0] += latency  # answered this much later
    # The second send was answered at 0.25: the fifth may go only at 1.25.
    assert sends == [0.0, 0.0, 0.25, 1.0, 1.25, 1.25, 2.0]
