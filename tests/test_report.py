"""Curves, thresholds, report.html and compare, on synthetic runs with known answers."""

import xml.etree.ElementTree as ET

import orjson
import pytest

from analysis import load_run, summarize, thresholds, windows

from .conftest import edgebench
from .test_analysis import T0, request, write


def synthetic_run(folder, *, accepted_latency=10.0, refuse_from=None, limit_thresholds=()):
    """20 s: 10/s for 10 s, then 20/s for 10 s; above `refuse_from` index, every 4th is a 422."""
    records, index = [], 0
    for second in range(20):
        rate = 10 if second < 10 else 20
        for k in range(rate):
            record = request(index, latency=accepted_latency)
            record["t_sched"] = T0 + second + k / rate
            record["t_send"] = record["t_sched"] + 0.001
            record["offered_rate"] = float(rate)
            if refuse_from is not None and index >= refuse_from and index % 4 == 0:
                record |= {"status": 422, "outcome": "allocation_failure"}
            records.append(record)
            index += 1
    write(folder, "requests-w0.jsonl", records)
    manifest = {
        "scenario": {"name": "synthetic", "mode": "respect", "limit": 40},
        "target": {"host": "http://127.0.0.1:1", "token_set": False},
        "ended_at": T0 + 21,
    }
    if limit_thresholds:
        manifest["scenario"]["thresholds"] = list(limit_thresholds)
    (folder / "manifest.json").write_bytes(orjson.dumps(manifest))
    return folder


def test_outcome_shares_and_failure_curves_are_exact(tmp_path):
    run = load_run(synthetic_run(tmp_path / "run", refuse_from=100))
    shares = windows.outcome_shares(run.requests)
    # Second 10 holds starts 100-119: 100, 104, 108, 112, 116 refused: 5 of 20.
    assert shares.loc[10, "allocation failure (422)"] == 0.25
    assert shares.loc[9, "accepted (202)"] == 1.0
    curve = windows.share_by_offered_rate(run.requests, "allocation_failure", bins=2)
    assert list(curve["sent"]) == [100, 200]
    assert list(curve["share"]) == [0.0, 0.25]
    assert list(curve["offered_per_s"]) == [12.5, 17.5]


def test_failures_against_active_deployments_use_the_emulator_readings(tmp_path):
    folder = synthetic_run(tmp_path / "run", refuse_from=100)
    readings = [{"t": T0 + s, "active": 10 * s, "holding_capacity": 10 * s} for s in range(21)]
    write(folder, "emulator-metrics.jsonl", readings)
    run = load_run(folder)
    curve = windows.share_by_active(run.requests, run.emulator, "allocation_failure")
    assert list(curve["active"][:3]) == [0, 10, 20]
    assert curve.set_index("active").loc[150, "share"] == 0.25


def test_checks_parse_and_reject_with_the_fix():
    check = thresholds.parse_one("share_429 == 0")
    assert (check.metric, check.op, check.number) == ("share_429", "==", 0.0)
    for bad, says in (
        ("p95 < 800", "unknown metric 'p95'"),
        ("p95_ms <", "is not a check"),
        ("p95_ms ~ 3", "is not a check"),
    ):
        with pytest.raises(thresholds.ThresholdError, match=says):
            thresholds.parse_one(bad)


def test_checks_judge_absolute_and_relative_values(tmp_path):
    values = thresholds.metrics(summarize(load_run(synthetic_run(tmp_path / "a", refuse_from=100))))
    assert values["share_422"] == pytest.approx(50 / 300)
    assert values["accepted_rate_per_s"] == pytest.approx(250 / 20, rel=0.01)  # span estimated
    checks = thresholds.parse(["share_422 < 0.2", "p95_ms <= baseline * 1.1", "share_429 > 0"])
    results = thresholds.evaluate(checks, values, baseline={"p95_ms": 9.0})
    assert [r.passed for r in results] == [True, False, False]
    assert results[1].limit == pytest.approx(9.9)
    assert "10 vs 9.9, FAILED" in results[1].message
    without = thresholds.evaluate(checks[1:2], values)
    assert "needs a baseline run" in without[0].message


def test_analyze_passes_fails_and_writes_junit(tmp_path):
    good = synthetic_run(tmp_path / "good", limit_thresholds=["p95_ms < 800", "share_422 == 0"])
    done = edgebench("analyze", good)
    assert done.exit_code == 0, done.output
    assert "PASS: all 2 thresholds met" in done.stdout
    bad = synthetic_run(
        tmp_path / "bad", refuse_from=0, limit_thresholds=["p95_ms < 800", "share_422 < 0.02"]
    )
    done = edgebench("analyze", bad)
    assert done.exit_code == 1
    assert "share_422 < 0.02: 0.25 vs 0.02, FAILED" in done.stdout
    suite = ET.parse(bad / "junit.xml").getroot()
    assert suite.get("tests") == "2"
    assert suite.get("failures") == "1"
    failure = suite.find(".//testcase[@name='share_422 < 0.02']/failure")
    assert failure is not None
    assert "FAILED" in failure.get("message")


def test_a_thresholds_file_overrides_and_a_bad_one_is_one_line(tmp_path):
    run = synthetic_run(tmp_path / "run", limit_thresholds=["p95_ms < 1"])
    checks = tmp_path / "checks.toml"
    checks.write_text('checks = ["p95_ms < 800"]\n')
    assert edgebench("analyze", run, "--thresholds", checks).exit_code == 0
    checks.write_text('checks = ["latency < 3"]\n')
    done = edgebench("analyze", run, "--thresholds", checks)
    assert done.exit_code == 2
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith(f"Error: {checks}: checks: 'latency < 3': unknown metric")


def test_the_report_is_one_self_contained_page_in_reading_order(tmp_path):
    folder = synthetic_run(tmp_path / "run", refuse_from=100, limit_thresholds=["p95_ms < 800"])
    write(folder, "requests-w1.jsonl", [], tail=b'{"index": 1, "t_s')
    done = edgebench("analyze", folder)
    assert done.exit_code == 0, done.output
    page = (folder / "report.html").read_text()
    assert 'src="http' not in page
    assert 'href="http' not in page
    order = ["PASS: all 1 thresholds met", "Key numbers", "data:image/png;base64,", "Run manifest"]
    positions = [page.index(marker) for marker in order]
    assert positions == sorted(positions)
    assert page.count("data:image/png;base64,") == 6  # no time-to-ready data in this run
    assert "1 unreadable log lines were skipped" in page
    for name in ("throughput", "outcome_shares", "latency", "allocation_failures", "regions"):
        assert (folder / f"{name}.png").stat().st_size > 1000
        assert (folder / f"{name}.svg").read_text().startswith("<?xml")


def test_a_corrupt_line_in_the_middle_is_counted_and_the_rest_kept(tmp_path):
    folder = tmp_path / "run"
    lines = [orjson.dumps(request(i)) for i in range(5)]
    lines.insert(2, b"{not json at all")
    lines.insert(4, b'{"index": "three", "t_sched": null}')  # wrong types: kept, fields nulled
    folder.mkdir()
    (folder / "requests-w0.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    run = load_run(folder)
    assert run.skipped_lines == 1
    assert list(run.requests["index"].dropna()) == [0, 1, 2, 3, 4]


def test_compare_marks_better_and_worse_and_gates_on_the_baseline(tmp_path):
    base = synthetic_run(tmp_path / "base", accepted_latency=10.0)
    candidate = synthetic_run(
        tmp_path / "candidate",
        accepted_latency=20.0,
        refuse_from=0,
        limit_thresholds=["p95_ms <= baseline * 1.1"],
    )
    done = edgebench("compare", base, candidate)
    assert done.exit_code == 1, done.output
    rows = {line.split()[0]: line for line in done.stdout.splitlines() if line[:1].isalpha()}
    assert rows["p95_ms"].split()[1:] == ["10", "20", "10", "+100.0%", "worse"]
    assert rows["share_422"].split()[-1] == "worse"
    assert "p95_ms <= baseline * 1.1: 20 vs 11, FAILED" in done.stdout
    out = candidate / "compare-base"
    assert "worse" in (out / "compare.html").read_text()
    assert (out / "compare.png").stat().st_size > 1000
    assert ET.parse(out / "junit.xml").getroot().get("failures") == "1"


def test_a_large_log_shows_a_progress_bar(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from analysis import cli

    folder = synthetic_run(tmp_path / "run")
    small = CliRunner().invoke(cli.analyze_command, [str(folder)])
    assert small.exit_code == 0, small.output
    assert "analysing run" not in small.stderr
    monkeypatch.setattr(cli, "LARGE_LOG_BYTES", 1)  # this log counts as large
    large = CliRunner().invoke(cli.analyze_command, [str(folder)])
    assert large.exit_code == 0, large.output
    assert "analysing run" in large.stderr
    assert "100%" in large.stderr
