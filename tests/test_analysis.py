"""The analysis on small synthetic runs whose answers are known exactly."""

import subprocess
import sys

import orjson
import pandas
import pytest

from analysis import load, load_run, summarize, thresholds

from .conftest import edgebench

# Started processes and servers, timed: one after another, in the first group of live
# tests (the second runs on the other worker: Makefile).
pytestmark = pytest.mark.xdist_group("live")

T0 = 1_800_000_000.0


def request(index, outcome="accepted", status=202, latency=10.0, worker="w0", region="eu"):
    sent = outcome not in ("dropped", "backoff")
    return {
        "index": index,
        "t_sched": T0 + index * 0.1,
        "t_send": T0 + index * 0.1 + 0.001 if sent else None,
        "endpoint": "POST /v2/deployments",
        "status": status if sent else None,
        "outcome": outcome,
        "latency_ms": latency if sent else None,
        "latency_sched_ms": latency + 1 if sent else None,
        "request_id": f"id{index}" if status in (202, 422) and sent else None,
        "region": region if sent else None,
        "players": 2 if sent else None,
        "worker": worker,
        "stage": 0,
        "offered_rate": 10.0,
    }


def write(folder, name, records, tail=b""):
    folder.mkdir(exist_ok=True)
    lines = b"".join(orjson.dumps(r) + b"\n" for r in records)
    (folder / name).write_bytes(lines + tail)


@pytest.fixture
def run_folder(tmp_path):
    folder = tmp_path / "run"
    # 20 starts over 2 s at 10/s, split over two workers, with a torn last line in one log.
    w0 = [request(i, latency=float(i + 1)) for i in range(0, 10)]
    w1 = [request(10, "allocation_failure", 422, worker="w1", region="na")]
    w1 += [request(11, "rate_limited", 429, worker="w1"), request(12, "dropped", worker="w1")]
    w1 += [request(i, worker="w1", latency=5.0) for i in range(13, 20)]
    write(folder, "requests-w0.jsonl", w0, tail=b'{"index": 99, "t_sch')
    write(folder, "requests-w1.jsonl", w1)
    events = [
        {
            "t_received": T0 + i * 0.1 + 2.001,
            "event": "ready",
            "request_id": f"id{i}",
            "current_status": "Status.READY",
            "source": "webhook",
            "worker": "w0",
        }
        for i in range(4)
    ]
    write(folder, "events-w0.jsonl", events)
    return folder


def test_counts_shares_and_rates_are_exact(run_folder):
    summary = summarize(load_run(run_folder))
    assert summary["requests_total"] == 20
    assert summary["requests_sent"] == 19
    assert summary["status_counts"] == {"202": 17, "422": 1, "429": 1}
    assert summary["outcome_counts"] == {
        "accepted": 17,
        "allocation_failure": 1,
        "rate_limited": 1,
        "dropped": 1,
    }
    # Two denominators, each named: the sent requests (as share_202 and the report), and
    # every scheduled start.
    assert summary["shares_of_sent"]["accepted"] == round(17 / 19, 6)
    assert "dropped" not in summary["shares_of_sent"]
    assert summary["shares_of_starts"] == {
        "accepted": 0.85,
        "allocation_failure": 0.05,
        "rate_limited": 0.05,
        "dropped": 0.05,
    }
    assert thresholds.metrics(summary)["share_202"] == pytest.approx(17 / 19)
    assert summary["dropped_starts"] == 1
    assert summary["duration_s"] == pytest.approx(2.0)
    assert summary["offered_rate_per_s"] == pytest.approx(10.0)
    assert summary["accepted_rate_per_s"] == pytest.approx(8.5)
    assert summary["skipped_lines"] == 1


def test_latency_percentiles_are_exact_nearest_rank(run_folder):
    summary = summarize(load_run(run_folder))
    # 19 sent: latencies 1..10 (w0) and 10, 10, 5 x 7 (w1): sorted nearest-rank values.
    samples = sorted([float(i) for i in range(1, 11)] + [10.0, 10.0] + [5.0] * 7)
    expected = {p: samples[max(1, -(-19 * p // 100)) - 1] for p in (50, 90, 95, 99)}
    from_send = summary["latency_ms"]["from_send"]
    assert [from_send[f"p{p}"] for p in (50, 90, 95, 99)] == [expected[p] for p in (50, 90, 95, 99)]
    assert from_send["max"] == 10.0
    assert summary["latency_ms"]["from_schedule"]["max"] == 11.0


def test_time_to_ready_joins_events_to_requests(run_folder):
    ready = summarize(load_run(run_folder))["time_to_ready_s"]
    assert ready["p50"] == pytest.approx(2.0)
    assert ready["max"] == pytest.approx(2.0)


def test_breakdowns_by_endpoint_and_region(run_folder):
    summary = summarize(load_run(run_folder))
    assert summary["by_endpoint"]["POST /v2/deployments"]["requests"] == 20
    assert summary["by_region"]["na"] == {
        "requests": 1,
        "sent": 1,
        "shares_of_sent": {"allocation_failure": 1.0},
        "shares_of_starts": {"allocation_failure": 1.0},
        "latency_ms": {"p50": 10.0, "p90": 10.0, "p95": 10.0, "p99": 10.0, "max": 10.0},
    }


def test_an_empty_run_says_so(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "manifest.json").write_bytes(orjson.dumps({"run_id": "e0", "workers": 1}))
    summary = summarize(load_run(folder))
    assert summary["requests_total"] == 0
    assert summary["offered_rate_per_s"] is None
    assert summary["latency_ms"]["from_send"]["p50"] is None
    done = edgebench("analyze", folder)
    assert done.exit_code == 0, done.output
    assert "no requests were recorded" in done.stdout
    page = (folder / "report.html").read_text()
    assert "This run recorded no requests" in page


def test_the_command_writes_summary_json_and_fails_clearly(run_folder, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "analysis", str(run_folder)], capture_output=True, text=True
    )
    assert done.returncode == 3, done.stderr  # the torn line: a start's record may be lost
    assert "warning: 1 unreadable log lines skipped" in done.stdout
    assert "INCOMPLETE: 1 unreadable record line (of 20 due starts" in done.stdout
    assert "scheduled starts" in done.stdout
    assert "20" in done.stdout
    assert orjson.loads((run_folder / "summary.json").read_bytes())["requests_total"] == 20
    missing = edgebench("analyze", tmp_path / "nope")
    assert missing.exit_code == 2
    assert missing.stderr.startswith("Error: ")
    assert missing.exception is None or isinstance(missing.exception, SystemExit)


def test_windows_hold_exact_counts_per_second(run_folder):
    from analysis import windows

    series = windows.throughput(load_run(run_folder).requests)
    # 20 starts at 10/s over 2 s: window 0 holds starts 0-9, window 1 starts 10-19.
    assert list(series["offered_per_s"]) == [10, 10]
    assert list(series["accepted_per_s"]) == [10, 7]
    assert list(series["sent_per_s"]) == [10, 9]
    assert list(series["dropped"]) == [0, 1]
    half = windows.throughput(load_run(run_folder).requests, window_s=0.5)
    assert list(half["offered_per_s"]) == [10, 10, 10, 10]
    latency = windows.latency(load_run(run_folder).requests)
    assert list(latency["send_p50"]) == [5.0, 5.0]
    assert list(latency["send_p99"]) == [10.0, 10.0]


def test_the_command_draws_the_curves(run_folder):
    done = edgebench("analyze", run_folder)
    assert done.exit_code == 3, done.output  # its torn line: incomplete, and still drawn
    for name in ("throughput", "latency"):
        for suffix in ("png", "svg"):
            path = run_folder / f"{name}.{suffix}"
            assert path.stat().st_size > 1000
    assert (run_folder / "throughput.png").read_bytes()[:4] == b"\x89PNG"


def test_a_complete_last_line_without_its_newline_is_kept(tmp_path):
    folder = tmp_path / "run"
    last = orjson.dumps(request(2))  # whole, but the writer never wrote its newline
    write(folder, "requests-w0.jsonl", [request(0), request(1)], tail=last)
    run = load_run(folder)
    assert list(run.requests["index"]) == [0, 1, 2]
    assert run.skipped_lines == 0


def test_only_a_tail_that_does_not_parse_is_a_torn_line(tmp_path):
    folder = tmp_path / "run"
    write(folder, "requests-w0.jsonl", [request(0), request(1)], tail=b'{"index": 2, "t_s')
    run = load_run(folder)
    assert list(run.requests["index"]) == [0, 1]
    assert run.skipped_lines == 1


def test_a_log_read_block_by_block_is_the_same_as_read_whole(run_folder, monkeypatch):
    whole = load_run(run_folder)
    monkeypatch.setattr(load, "WHOLE_LOG_BYTES", 0)  # every log as a big one is read
    monkeypatch.setattr(load, "BLOCK_BYTES", 256)  # a few records a block
    by_blocks = load_run(run_folder)
    pandas.testing.assert_frame_equal(by_blocks.requests, whole.requests)
    pandas.testing.assert_frame_equal(by_blocks.events, whole.events)
    assert by_blocks.skipped_lines == whole.skipped_lines == 1


def test_an_arrow_log_counts_as_the_text_its_records_would_be(tmp_path):
    (tmp_path / "requests-w0.jsonl").write_bytes(b"x" * 100)
    (tmp_path / "requests-sim.arrow").write_bytes(b"x" * 10)
    (tmp_path / "manifest.json").write_bytes(b"{}")  # not a log
    assert load.records_text_bytes(tmp_path) == 100 + 10 * load.ARROW_TO_TEXT


@pytest.mark.parametrize("kind", ["empty", "not a run", "the results root"])
def test_what_is_not_a_run_folder_is_refused_and_nothing_is_written(tmp_path, run_folder, kind):
    folder = {"empty": tmp_path / "e", "not a run": tmp_path / "x", "the results root": tmp_path}[
        kind
    ]
    folder.mkdir(exist_ok=True)
    if kind == "not a run":
        (folder / "notes.txt").write_text("hello")
    done = edgebench("analyze", folder)
    assert done.exit_code == 2
    assert done.stderr == (
        f"Error: {folder}: not a run folder (no manifest.json, no requests-*.jsonl or .arrow); "
        "pass a folder made by edgebench run\n"
    )
    assert not (folder / "report.html").exists()
    assert not (folder / "summary.json").exists()


def test_only_the_files_of_the_manifests_run_are_read(tmp_path):
    folder = tmp_path / "run"
    write(folder, "requests-aa11-w0.jsonl", [request(0), request(1)])
    write(folder, "requests-bb22-w0.jsonl", [request(i) for i in range(2, 12)])  # an older run
    write(folder, "events-bb22-w0.jsonl", [])
    (folder / "manifest.json").write_bytes(orjson.dumps({"run_id": "aa11"}))
    run = load_run(folder)
    assert list(run.requests["index"]) == [0, 1]
    assert run.foreign_files == ["events-bb22-w0.jsonl", "requests-bb22-w0.jsonl"]
    done = edgebench("analyze", folder)
    assert "2 record files of another run were not read" in done.stdout
    assert (
        "record files of another run in this folder were not read"
        in (folder / "report.html").read_text()
    )
