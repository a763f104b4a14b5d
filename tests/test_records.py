import re
from pathlib import Path

import pyarrow as pa
import pytest

from analysis import load
from edgebench.realapi.token import api_token
from edgebench.records import (
    EVENT_FIELDS,
    NOT_SENT,
    READING_FIELDS,
    REQUEST_FIELDS,
    SENT_OUTCOMES,
    RecordWriter,
    emulator_reading,
    event_record,
    outcome_of,
    read_records,
    request_record,
)
from edgebench.traffic.guard import SendGuard
from edgebench.traffic.pool import pool_size


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


def test_the_send_guard_holds_sends_to_the_quota_in_any_window_after_the_answers():
    now = [0.0]
    guard = SendGuard(3, 1.0, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))
    sends = []
    for latency in (0.0, 0.25, 0.0, 0.0, 0.0, 0.0, 0.0):
        with guard.turn():
            sends.append(now[0])
            now[0] += latency  # answered this much later
    # The second send was answered at 0.25: the fifth may go only at 1.25.
    assert sends == [0.0, 0.0, 0.25, 1.0, 1.25, 1.25, 2.0]


README = Path(__file__).resolve().parent.parent / "results" / "README.md"
JSON_TYPES = {"int": int, "float": float, "string": str, "object": dict}
ARROW_TYPES = {int: pa.int64(), float: pa.float64(), str: pa.string()}


def documented_fields(heading: str) -> dict[str, tuple[type, bool]]:
    """documented_fields reads a field table of results/README.md: name -> (type, nullable)."""
    section = README.read_text().split(heading, 1)[1].split("\n## ", 1)[0]
    fields = {}
    for row in re.findall(r"^\| `(\w+)` \| ([a-z ]+) \|", section, flags=re.MULTILINE):
        name, kind = row
        fields[name] = (JSON_TYPES[kind.removesuffix(" or null")], kind.endswith(" or null"))
    return fields


@pytest.mark.parametrize(
    ("fields", "heading", "schema", "built"),
    [
        (
            REQUEST_FIELDS,
            "## `requests-<run>-<worker>.jsonl`",
            load.REQUEST_SCHEMA,
            request_record(
                index=0, t_sched=1.0, endpoint="e", worker="w0", stage=0, offered_rate=1.0,
                outcome="dropped",
            ),
        ),
        (
            EVENT_FIELDS,
            "## `events-<run>-<worker>.jsonl`",
            load.EVENT_SCHEMA,
            event_record(
                t_received=1.0, event="ready", request_id="r", current_status=None,
                source="poll", worker="w0",
            ),
        ),
        (
            READING_FIELDS,
            "## `emulator-metrics.jsonl`",
            load.EMULATOR_SCHEMA,
            emulator_reading(
                t=1.0, active=None, holding_capacity=None, deployments_created=None,
                private_host_changes={}, by_location={}, fleet_private=0, fleet_cloud=0,
                allocation_failures={},
            ),
        ),
    ],
)  # fmt: skip
def test_the_writers_the_analysis_and_the_readme_agree_field_by_field(
    fields, heading, schema, built
):
    contract = {field.name: (field.kind, field.nullable) for field in fields}
    assert list(built) == list(contract)
    assert documented_fields(heading) == contract
    # Objects are read apart (the analysis' frames hold the scalar fields).
    scalar = {n: ARROW_TYPES[k] for n, (k, _) in contract.items() if k is not dict}
    assert {f.name: f.type for f in schema} == scalar


def test_every_outcome_is_documented():
    section = README.read_text().split("## `requests-<run>-<worker>.jsonl`", 1)[1]
    row = next(line for line in section.splitlines() if line.startswith("| `outcome`"))
    documented = set(re.findall(r"`(\w+)` \(", row))
    assert documented == {*SENT_OUTCOMES, *NOT_SENT}


def test_an_arrow_log_cut_mid_batch_keeps_every_whole_batch(tmp_path):
    """A killed simulator leaves its last batch torn: the batches before it still read, and
    the analysis counts the torn one as skipped (a killed JSON-lines writer's torn line)."""
    from analysis.load import load_run
    from edgebench.records import ColumnarWriter, read_columnar

    path = tmp_path / "requests-r1-sim.arrow"
    writer = ColumnarWriter(path, REQUEST_FIELDS)
    records = [
        request_record(index=k, t_sched=float(k), endpoint="POST /v2/deployments", worker="sim",
                       stage=0, offered_rate=1.0, outcome="accepted", region="europe")
        for k in range(3000)
    ]  # fmt: skip
    for k, record in enumerate(records):
        writer.add(tuple(record.values()))  # a row: the fields' values in order
        if k % 1000 == 999:
            writer.flush()  # three batches, as three seconds would write them
    writer.close()
    assert list(records[0]) == [field.name for field in REQUEST_FIELDS]
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) - 200])  # the last batch torn
    table, torn = read_columnar(path)
    assert torn == 1
    assert table.to_pylist() == records[:2000]
    run = load_run(tmp_path)
    assert len(run.requests) == 2000
    assert run.skipped_lines == 1
