"""Curves, thresholds, report.html and compare, on synthetic runs with known answers."""

import html
import os
import time
import xml.etree.ElementTree as ET
from types import SimpleNamespace

import numpy as np
import orjson
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis import load_run, summarize, thresholds, windows
from analysis.compare import _scenario_warning
from analysis.report import InACopy, analyze, curves_by_rate, draw, key_numbers, verdict

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
    # Two stages, two rates: a point at each of the scenario's rates, not at bin centres.
    curve = windows.share_by_offered_rate(run.requests, "allocation_failure")
    assert list(curve["sent"]) == [100, 200]
    assert list(curve["share"]) == [0.0, 0.25]
    assert list(curve["offered_per_s"]) == [10.0, 20.0]
    ramp = run.requests.assign(offered_rate=run.requests["index"].astype(float) / 10)
    binned = windows.share_by_offered_rate(ramp, "allocation_failure", bins=2)
    assert list(binned["offered_per_s"]) == [7.45, 22.45]  # the mean rate of each bin's starts


def test_failures_against_occupancy_count_only_deployments_that_hold_a_slot(tmp_path):
    folder = synthetic_run(tmp_path / "run", refuse_from=100)
    # Deployments in ERROR are active but hold no slot: 50 of them from the start.
    readings = [{"t": T0 + s, "active": 10 * s + 50, "holding_capacity": 10 * s} for s in range(21)]
    write(folder, "emulator-metrics.jsonl", readings)
    run = load_run(folder)
    curve = windows.occupancy_over_time(run.requests, run.emulator, "allocation_failure")
    assert list(curve["holding"][:3]) == [10, 20, 30]  # the reading at each window's end
    assert curve.set_index("holding").loc[110, "share"] == 0.25


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
    assert done.exit_code == 3, done.output  # the torn record: no pass on it
    page = (folder / "report.html").read_text()
    assert 'src="http' not in page
    assert 'href="http' not in page
    order = ["INCOMPLETE: 1 unreadable", "Key numbers", "data:image/png;base64,", "Run manifest"]
    positions = [page.index(marker) for marker in order]
    assert positions == sorted(positions)
    assert page.count("data:image/png;base64,") == 7  # no time to ready, no queue in this run
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
    # A check given inline judges the comparison instead of the scenario's.
    inline = edgebench("compare", base, candidate, "--check", "p95_ms <= baseline * 3")
    assert inline.exit_code == 0, inline.output
    assert "p95_ms <= baseline * 3: 20 vs 30, ok" in inline.stdout


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


def test_the_report_says_what_the_run_ran_on_and_that_times_are_scaled(tmp_path):
    folder = synthetic_run(tmp_path / "run")
    manifest = orjson.loads((folder / "manifest.json").read_bytes())
    manifest["scenario"] |= {"path": "scenarios/x.toml", "sha256": "ab" * 32, "seed": 7}
    manifest["emulator"] = {
        "embedded": True,
        "seed": 7,
        "time_scale": 60.0,
        "world": {"source": "w.toml", "sha256": "cd" * 32, "locations": 4, "capacity": 120},
    }
    manifest["command_line"] = ["edgebench", "run", "scenarios/x.toml", "--time-scale", "60"]
    (folder / "manifest.json").write_bytes(orjson.dumps(manifest))
    done = edgebench("analyze", folder)
    assert done.exit_code == 0, done.output
    page = (folder / "report.html").read_text()
    assert "scenario scenarios/x.toml (sha256 abababababab…), seed 7" in page
    assert (
        "world w.toml (sha256 cdcdcdcdcdcd…, 120 slots in 4 locations), seed 7, time scale 60x"
        in (page)
    )
    assert "time to ready is measured in wall time: the platform ran 60x faster" in page
    assert "command: edgebench run scenarios/x.toml --time-scale 60" in page
    assert orjson.loads((folder / "summary.json").read_bytes())["time_scale"] == 60.0


def test_key_numbers_read_top_to_bottom_with_one_format_each(tmp_path):
    folder = synthetic_run(tmp_path / "run", accepted_latency=12.5)
    outcome = analyze(folder, checks=[])
    numbers = dict(key_numbers(outcome.summary))
    assert numbers["offered rate"] == "15.0/s"
    assert numbers["peak due rate (busiest second, by schedule)"] == "20.0/s"  # the second stage
    assert numbers["peak sent rate (busiest second)"] == "20.0/s"
    assert numbers["latency from send, after the first 5 s, p50 / p95 / p99 / max"] == (
        "12.5 ms / 12.5 ms / 12.5 ms / 12.5 ms"
    )
    page = (folder / "report.html").read_text()
    order = ["Key numbers", "By endpoint", "By region", "Curves", "Run manifest"]
    positions = [page.index(f">{title}</h2>") for title in order]
    assert positions == sorted(positions)
    assert '<a href="#curves">curves</a>' in page  # a table of contents


def test_the_warm_up_is_left_out_of_the_headline_percentiles(tmp_path):
    folder = synthetic_run(tmp_path / "run")
    log = next(folder.glob("requests-*"))
    lines = [orjson.loads(line) for line in log.read_bytes().splitlines()]
    for line in lines:
        if line["t_sched"] < T0 + 4:
            line["latency_ms"] = 400.0  # the first seconds' spike
    write(folder, log.name, lines)
    summary = summarize(load_run(folder))
    assert summary["warmup_s"] == 5.0
    assert summary["latency_ms"]["from_send"]["max"] == 10.0
    assert summary["latency_ms"]["whole_run"]["from_send"]["max"] == 400.0


def capacity_run(tmp_path, cause="no_capacity", rates=(10, 20)):
    """capacity_run: a 20 s run whose 422s begin at 10 s, when the emulator's 100 slots are full."""
    folder = synthetic_run(tmp_path / "run", refuse_from=100)
    log = next(folder.glob("requests-*"))
    lines = [orjson.loads(line) for line in log.read_bytes().splitlines()]
    for line in lines:
        line["offered_rate"] = float(rates[0] if line["t_sched"] < T0 + 10 else rates[-1])
        if line["outcome"] == "allocation_failure":
            line["cause"] = cause
    write(folder, log.name, lines)
    readings = [
        {
            "t": T0 + s,
            "active": min(10 * s, 100) + 5 * max(0, s - 10),  # ERROR ones are active too
            "holding_capacity": min(10 * s, 100),
            "by_private_host": {"h1": min(s, 10), "h2": 0},
            "fleet_private": 10 * s,
            "fleet_cloud": 30 * s,
        }
        for s in range(21)
    ]
    write(folder, "emulator-metrics.jsonl", readings)
    manifest = orjson.loads((folder / "manifest.json").read_bytes())
    world = {"capacity": 90, "private_capacity": 10, "source": "w.toml", "sha256": "ab"}
    world["private_hosts"] = {
        "h1": {"capacity": 10, "status": "ACTIVE"},
        "h2": {"capacity": 5, "status": "PENDING"},
    }
    manifest["emulator"] = {"world": world, "time_scale": 1.0, "seed": 0}
    (folder / "manifest.json").write_bytes(orjson.dumps(manifest))
    return folder


def test_422_causes_and_what_explains_them_go_into_the_summary_and_the_report(tmp_path):
    outcome = analyze(capacity_run(tmp_path), checks=[])
    summary = outcome.summary
    assert summary["allocation_failure_causes"] == {"no_capacity": 50}
    assert summary["occupancy"] == {
        "capacity": 100,
        "peak_holding": 100,
        "first_422_s": 10.0,
        "holding_at_first_422": 100,
    }
    assert summary["explanation_422"].startswith(
        "422s began 10 s in, with 100 of 100 slots held: the world filled up"
    )
    assert summary["fleet"] == {"placed_private": 200, "placed_cloud": 600, "overflow_share": 0.75}
    page = outcome.report.read_text()
    assert "What explains the 422s: 422s began 10 s in" in page
    assert "no_capacity 50" in page
    assert "600 (75.00% overflow)" in page
    assert (outcome.run.folder / "occupancy.png").exists()
    assert (outcome.run.folder / "fleet.png").exists()


def test_coverage_causes_are_told_apart_from_capacity(tmp_path):
    summary = analyze(capacity_run(tmp_path, cause="out_of_range"), checks=[]).summary
    assert summary["explanation_422"].startswith("50 of 50 422s are out_of_range: a matter of")


def test_each_share_is_drawn_against_what_can_explain_it(tmp_path):
    run = load_run(capacity_run(tmp_path))
    jobs = {job[0]: job for job in curves_by_rate(run, summarize(run), 1.0)}
    failures = jobs["422 allocation failures"][2]
    assert [panel.x for panel in failures] == ["offered_per_s", "t_s", "holding"]
    assert failures[0].line is None  # no rate limit line on a capacity plot
    assert failures[2].line == (100, "capacity: 100 slots: 90 in locations and 10 on private hosts")
    assert list(failures[0].curve["offered_per_s"]) == [10.0, 20.0]
    limited = jobs["429 rate limited"][2]
    assert limited[0].line == (40, "limit 40/s")
    # Where fleet deploys landed, each fleet against the capacity of its active hosts.
    assert {name: capacity for name, (_, capacity) in jobs["Fleet"][4].items()} == {
        "private hosts": 10  # its hosts name no fleet
    }
    (tmp_path / "one").mkdir()
    one_rate = load_run(capacity_run(tmp_path / "one", rates=(60,)))
    jobs = {job[0]: job for job in curves_by_rate(one_rate, summarize(one_rate), 1.0)}
    # One offered rate: its 429s over time, not one dot on a rate axis.
    assert [panel.x for panel in jobs["429 rate limited"][2]] == ["t_s"]
    assert jobs["429 rate limited"][3] == "rate_limited"  # drawn in the 429 colour


def renamed(folder, name: str):
    manifest = orjson.loads((folder / "manifest.json").read_bytes())
    manifest["scenario"] |= {"name": name, "sha256": name * 8}
    (folder / "manifest.json").write_bytes(orjson.dumps(manifest))
    return folder


def test_compare_warns_loudly_when_the_runs_are_of_different_scenarios(tmp_path):
    base = renamed(synthetic_run(tmp_path / "base"), "smoke")
    candidate = renamed(synthetic_run(tmp_path / "candidate"), "launch")
    done = edgebench("compare", base, candidate)
    assert done.stdout.startswith("WARNING: the runs are of different scenarios (smoke and launch")
    page = (candidate / "compare-base" / "compare.html").read_text()
    assert "WARNING: the runs are of different scenarios" in page


def test_a_difference_within_the_runs_noise_is_not_called_better_or_worse(tmp_path):
    rng = np.random.default_rng(3)
    folders = []
    for name, shift in (("base", 0.0), ("candidate", -0.008)):
        folder = synthetic_run(tmp_path / name)
        log = next(folder.glob("requests-*"))
        lines = [orjson.loads(line) for line in log.read_bytes().splitlines()]
        for line in lines:
            line["latency_ms"] = float(rng.lognormal(1.0, 0.3)) + shift
        write(folder, log.name, lines)
        folders.append(folder)
    done = edgebench("compare", *folders)
    rows = {line.split()[0]: line for line in done.stdout.splitlines() if line[:1].isalpha()}
    assert rows["p50_ms"].endswith("within noise")
    assert "better" not in rows["p50_ms"]


def test_runs_of_different_lengths_are_compared_over_the_shorter(tmp_path):
    base = synthetic_run(tmp_path / "base")
    candidate = tmp_path / "candidate"
    log = next(base.glob("requests-*"))
    lines = [orjson.loads(line) for line in log.read_bytes().splitlines()]
    write(candidate, log.name, [line for line in lines if line["t_sched"] < T0 + 10])
    (candidate / "manifest.json").write_bytes((base / "manifest.json").read_bytes())
    done = edgebench("compare", base, candidate)
    assert "WARNING: the runs differ in length (20 s and 10 s): both are compared over" in (
        done.stdout
    )
    rows = {line.split()[0]: line for line in done.stdout.splitlines() if line[:1].isalpha()}
    # Over their first 10 s both ran at 10/s: no change in the offered rate.
    assert rows["offered_rate_per_s"].split()[1:4] == ["10", "10", "0"]


def test_the_report_leads_with_the_players_wait_the_queue_and_the_attempts(tmp_path):
    folder = tmp_path / "run"
    records = []
    for match in range(20):
        due = T0 + match * 0.1
        first = request(match, "rate_limited", 429) | {"match": match, "attempt": 1}
        first |= {"t_sched": due, "t_send": due + 0.5, "queue_ms": 500.0, "final": None}
        retry = request(match) | {"match": match, "attempt": 2, "t_sched": due}
        retry |= {"t_send": due + 1.5, "latency_ms": 10.0, "queue_ms": 0.0, "final": "served"}
        records += [first, retry] if match % 2 else [first | {"final": "failed"}]
    write(folder, "requests-w0.jsonl", records)
    outcome = analyze(folder, checks=thresholds.parse(["amplification < 1.2"]))
    summary = outcome.summary
    assert summary["matches"] == {
        "total": 20, "recorded": 20, "served": 10, "failed": 10, "abandoned": 0,
        "unknown": 0, "capped": 0, "unserved": 10, "share_unserved": 0.5,
    }  # fmt: skip
    assert summary["attempts_per_match"] == {"mean": 1.5, "max": 2}
    assert summary["player_wait_to"] == "accepted"
    assert summary["player_wait_s"]["p50"] == pytest.approx(1.51)  # due to the retry's 202
    assert summary["queue_wait_ms"]["max"] == 500.0
    assert not outcome.passed  # 1.5 requests per match: the retries are the amplification
    page = html.unescape(outcome.report.read_text())
    assert page.index('alt="Players\' wait"') < page.index('alt="Throughput"')
    assert (folder / "queue.png").stat().st_size > 1000
    assert "players' wait, match to the 202: p50 / p95 / p99 / max" in page


def test_compare_tells_a_scenario_whose_forecast_or_log_changed_from_the_same():
    def run(**scenario):
        return SimpleNamespace(manifest={"scenario": {"name": "launch", "sha256": "a"} | scenario})

    assert _scenario_warning(run(inputs_sha256="x"), run(inputs_sha256="x")) == []
    assert _scenario_warning(run(inputs_sha256="x"), run(inputs_sha256="y"))  # another CSV
    assert _scenario_warning(run(), run(inputs_sha256="y")) == []  # an older manifest: the file's


def unserved_run(folder, failed_every: int):
    """unserved_run is 40 matches served in 2 s each, but every failed_every-th got no server."""
    records = []
    for match in range(40):
        if match % failed_every == 0:
            records.append(request(match, "allocation_failure", 422) | {"final": "failed"})
        else:
            records.append(request(match, latency=2000.0) | {"final": "served"})
    write(folder, "requests-w0.jsonl", records)


def test_matches_that_never_got_a_server_count_in_the_players_wait(tmp_path):
    unserved_run(tmp_path / "run", failed_every=4)  # a quarter unserved
    checks = thresholds.parse(["wait_p50_s < 10", "wait_p99_s < 10"])
    outcome = analyze(tmp_path / "run", checks=checks, plots=False)
    wait = outcome.summary["player_wait_s"]
    assert wait["p50"] == pytest.approx(2.001)  # among the served: a real wait
    assert wait["p95"] is None  # among the unserved: never
    assert wait["max"] is None
    assert outcome.summary["matches"]["share_unserved"] == 0.25
    results = {r.check.text: r.passed for r in outcome.results}
    assert results == {"wait_p50_s < 10": True, "wait_p99_s < 10": False}
    assert (
        "never"
        in dict(key_numbers(outcome.summary))[
            "players' wait, match to the 202: p50 / p95 / p99 / max"
        ]
    )


def test_a_pass_with_matches_unserved_and_no_check_on_them_says_so(tmp_path):
    unserved_run(tmp_path / "quiet", failed_every=20)  # 5% unserved, p50 still served
    outcome = analyze(tmp_path / "quiet", checks=thresholds.parse(["p95_ms < 5000"]), plots=False)
    assert outcome.passed
    banner = verdict(outcome.results, None, outcome.summary)["text"]
    assert banner.startswith("PASS")
    assert "5.0% of the matches got no server and no check looks at it" in banner
    watched = analyze(
        tmp_path / "quiet", checks=thresholds.parse(["share_unserved < 0.1"]), plots=False
    )
    assert watched.passed
    assert "no server" not in verdict(watched.results, None, watched.summary)["text"]


def with_ready_events(folder, rng, scale: float) -> None:
    """with_ready_events adds a ready event for every 202, a lognormal time after its send."""
    log = next(folder.glob("requests-*"))
    lines = [orjson.loads(line) for line in log.read_bytes().splitlines()]
    events = [
        {
            "t_received": line["t_send"] + float(rng.lognormal(0.0, 0.3)) * scale,
            "event": "ready",
            "request_id": line["request_id"],
            "current_status": "Status.READY",
            "source": "webhook",
            "worker": "w0",
        }
        for line in lines
        if line["status"] == 202
    ]
    write(folder, "events-w0.jsonl", events)


def test_time_to_ready_and_waits_are_judged_against_their_noise_and_compared(tmp_path):
    rng = np.random.default_rng(5)
    folders = []
    for name, scale in (("base", 1.0), ("candidate", 1.006)):  # +0.6%: the runs' noise
        folder = synthetic_run(tmp_path / name, refuse_from=200)
        with_ready_events(folder, rng, scale)
        folders.append(folder)
    done = edgebench("compare", *folders)
    rows = {line.split()[0]: line for line in done.stdout.splitlines() if line[:1].isalpha()}
    assert rows["ttr_p50_s"].endswith("within noise")
    for metric in ("wait_p50_s", "wait_p95_s", "wait_p99_s", "share_unserved", "share_overflow"):
        assert metric in rows  # the players' wait, matches with no server, fleet overflow


def test_an_older_folder_reads_whatever_fields_it_lacks(tmp_path):
    # Each earlier layout, as the record files, readings and manifests were written then.
    layouts = {
        "before-matches": ("match", "attempt", "queue_ms", "final", "cause"),
        "before-clients": ("match", "attempt", "queue_ms", "final"),
        "before-host-changes": (),
        "current": (),
    }
    readings = {
        "before-matches": {"t": T0, "active": 3},
        "before-clients": {"t": T0, "active": 3, "holding_capacity": 3, "deployments_created": 9},
        "before-host-changes": {
            "t": T0, "active": 3, "holding_capacity": 3, "deployments_created": 9,
            "by_private_host": {"h1": 1}, "fleet_private": 2, "fleet_cloud": 1,
            "allocation_failures": {"no_capacity": 1},
        },
        "current": {
            "t": T0, "active": 3, "holding_capacity": 3, "deployments_created": 9,
            "private_host_changes": {"h1": 1}, "fleet_private": 2, "fleet_cloud": 1,
            "allocation_failures": {"no_capacity": 1},
        },
    }  # fmt: skip
    for layout, missing in layouts.items():
        folder = synthetic_run(tmp_path / layout, refuse_from=100)
        log = next(folder.glob("requests-*"))
        lines = [orjson.loads(line) for line in log.read_bytes().splitlines()]
        write(folder, log.name, [{k: v for k, v in r.items() if k not in missing} for r in lines])
        write(folder, "emulator-metrics.jsonl", [readings[layout]])
        if layout == "before-matches":
            (folder / "manifest.json").unlink()  # the first runs wrote none
        outcome = analyze(folder, plots=False)
        assert outcome.summary["requests_total"] == 300, layout
        assert outcome.report.exists()


def test_throughput_shows_what_the_api_saw_by_send_time_and_what_was_due_by_due_time():
    import pandas as pd

    # A tick releases 120 matches at once; a queue sends them 40 a second.
    records = []
    for k in range(120):
        sent = T0 + k // 40 + 0.01
        records.append(request(k) | {"t_sched": T0, "t_send": sent})
    series = windows.throughput(pd.DataFrame(records), 1.0)
    assert series["offered_per_s"].tolist()[:3] == [120.0, 0.0, 0.0]  # due at the tick
    assert series["sent_per_s"].tolist()[:3] == [40.0, 40.0, 40.0]  # what the limit counted
    assert series["accepted"].max() == 40


def test_a_long_run_is_drawn_in_windows_it_can_be_read_in(tmp_path):
    day = [request(k) | {"t_sched": T0 + k * 60.0, "t_send": T0 + k * 60.0} for k in range(1080)]
    write(tmp_path / "long", "requests-w0.jsonl", day)  # 18 hours, a start a minute
    outcome = analyze(tmp_path / "long", plots=False)
    assert outcome.summary["requests_total"] == 1080
    assert windows.readable_window(18 * 3600) == 60  # 1,080 points, not 64,800


def test_seventy_private_hosts_are_read_as_their_cities_and_fleets_and_the_capacity_said_once(
    tmp_path,
):
    from analysis.load import _held_by, _readings
    from analysis.report import capacity_text

    known = {f"h{k}": {"location": "Paris" if k < 40 else "Tokyo", "fleet": "f", "capacity": 4,
                       "status": "ACTIVE"} for k in range(69)}  # fmt: skip
    manifest = {"emulator": {"world": {"private_hosts": known}}}
    readings = [  # the changes since the reading before: every host busy, then every one more
        {"t": 1.0, "private_host_changes": {f"h{k}": 1 for k in range(70)}},
        {"t": 2.0, "private_host_changes": {f"h{k}": 2 for k in range(70)}},
        {"t": 3.0, "private_host_changes": {"h0": 0}},
    ]
    write(tmp_path, "emulator-metrics.jsonl", readings)
    fleets, cities, _ = _held_by(_readings(tmp_path), manifest)
    assert list(cities.columns) == ["t", "Paris", "Tokyo", "h69"]  # one unplaced: its id
    assert cities["Paris"].tolist() == [40, 80, 78]
    assert fleets["f"].tolist() == [69, 138, 136]
    assert fleets["private hosts"].tolist() == [1, 2, 2]  # a host no fleet of the manifest's
    world = {"capacity": 11200, "private_capacity": 70, "locations": 39}
    assert capacity_text(world) == "11,270 slots: 11,200 in 39 locations and 70 on private hosts"


def test_an_earlier_folders_readings_of_every_busy_host_read_the_same(tmp_path):
    from analysis.load import _held_by, _readings

    manifest = {"emulator": {"world": {"private_hosts": {"a": {"fleet": "f", "location": "X"}}}}}
    whole = [
        {"t": 1.0, "by_private_host": {"a": 2, "b": 1}},
        {"t": 2.0, "by_private_host": {"a": 1}},
    ]
    write(tmp_path / "whole", "emulator-metrics.jsonl", whole)
    changes = [{"t": 1.0, "private_host_changes": {"a": 2, "b": 1}},
               {"t": 2.0, "private_host_changes": {"a": 1, "b": 0}}]  # fmt: skip
    write(tmp_path / "changes", "emulator-metrics.jsonl", changes)
    read = [_held_by(_readings(tmp_path / name), manifest) for name in ("whole", "changes")]
    for before, after in zip(*read, strict=True):
        pd.testing.assert_frame_equal(before, after)
    assert read[0][0]["f"].tolist() == [2, 1]
    assert read[0][1]["X"].tolist() == [2, 1]


@pytest.mark.parametrize(("completed", "unrecorded"), [(True, 5 + 12), (False, 5)])
def test_starts_lost_at_the_very_end_count_once_the_schedule_ran_to_its_end(
    tmp_path, completed, unrecorded
):
    # 100 starts scheduled; 5 lost mid-run (holes) and the last 12 lost with a worker cut
    # off at the end: only a run that says its schedule completed knows those 12 were due.
    kept = [i for i in range(88) if not 40 <= i < 45]
    records = [request(i) | {"match": i, "attempt": 0} for i in kept]
    write(tmp_path / "run", "requests-w0.jsonl", records)
    manifest = {
        "scenario": {"name": "lost", "mode": "respect", "limit": 40, "expected_requests": 100},
        "ended_at": T0 + 11,
        "schedule_completed": completed,
    }
    (tmp_path / "run" / "manifest.json").write_bytes(orjson.dumps(manifest))
    assert summarize(load_run(tmp_path / "run"))["unrecorded_starts"] == unrecorded


PARENT = os.getpid()


def _plot(folder, name, fail_in_copy=False):
    """_plot stands in for a plot function: a file and its path, written by whoever drew it."""
    if fail_in_copy and os.getpid() != PARENT:
        raise RuntimeError("the forked copy failed")
    path = folder / f"{name}.png"
    path.write_text(str(os.getpid()))
    return (path,)


def test_plots_drawn_by_a_forked_copy_come_back_in_order(tmp_path):
    jobs = [(f"plot {n}", _plot, tmp_path, f"p{n}") for n in range(3)]
    copy = InACopy(lambda: draw(jobs))
    (tmp_path / "meanwhile").write_text("this process goes on")
    assert copy.result() == [(f"plot {n}", tmp_path / f"p{n}.png") for n in range(3)]
    assert {(tmp_path / f"p{n}.png").read_text() for n in range(3)} - {str(PARENT)}


def test_plots_the_copy_failed_to_draw_are_drawn_here(tmp_path):
    jobs = [(f"plot {n}", _plot, tmp_path, f"p{n}", True) for n in range(2)]
    assert InACopy(lambda: draw(jobs)).result() == [
        (f"plot {n}", tmp_path / f"p{n}.png") for n in range(2)
    ]
    assert {(tmp_path / f"p{n}.png").read_text() for n in range(2)} == {str(PARENT)}


def test_a_copy_whose_work_is_no_longer_wanted_is_stopped():
    children = []

    def summary_fails():
        with InACopy(lambda: time.sleep(60) or []) as copy:
            children.append(copy._child)
            raise RuntimeError("the summary failed")

    began = time.monotonic()
    with pytest.raises(RuntimeError):
        summary_fails()
    assert time.monotonic() - began < 30
    with pytest.raises(ChildProcessError):  # ended and waited for: no zombie left
        os.waitpid(children[0], os.WNOHANG)


def cut_short_run(folder, *, sent: int, scheduled: int = 100, completed: bool | None = False):
    """cut_short_run is a folder of `sent` starts of a schedule of `scheduled`, at 10/s."""
    write(
        folder, "requests-w0.jsonl", [request(i) | {"match": i, "attempt": 0} for i in range(sent)]
    )
    scenario = {
        "name": "cut", "mode": "respect", "limit": 40, "expected_requests": scheduled,
        "duration_s": scheduled / 10, "thresholds": ["share_429 == 0"],
    }  # fmt: skip
    manifest = {"scenario": scenario, "epoch": T0, "ended_at": T0 + sent / 10}
    if completed is not None:
        manifest["schedule_completed"] = completed
    (folder / "manifest.json").write_bytes(orjson.dumps(manifest))


def test_a_run_cut_short_is_incomplete_with_how_far_it_got(tmp_path):
    cut_short_run(tmp_path / "run", sent=30)
    outcome = analyze(tmp_path / "run", plots=False)
    assert outcome.results[0].passed  # its one check holds on what was sent
    assert outcome.exit_code == 3
    banner = verdict(outcome.results, outcome.aborted, outcome.summary)
    assert banner["kind"] == "incomplete"
    assert banner["text"] == (
        "INCOMPLETE: the run stopped at 0:00:03 of its 0:00:10; 30 of its 100 scheduled "
        "starts recorded"
    )
    done = edgebench("analyze", tmp_path / "run", "--no-plots")
    assert done.exit_code == 3
    assert "INCOMPLETE: the run stopped at 0:00:03" in done.output
    junit = ET.parse(tmp_path / "run" / "junit.xml").getroot()
    assert junit.get("errors") == "1"
    assert 'class="verdict incomplete">INCOMPLETE' in (tmp_path / "run" / "report.html").read_text()


def test_a_complete_run_and_one_from_before_the_flag_still_pass(tmp_path):
    cut_short_run(tmp_path / "whole", sent=100, completed=True)
    cut_short_run(tmp_path / "old", sent=100, completed=None)  # no schedule_completed
    for name in ("whole", "old"):
        outcome = analyze(tmp_path / name, plots=False)
        assert outcome.exit_code == 0, name
        assert verdict(outcome.results, None, outcome.summary)["kind"] == "pass"


def test_a_failed_check_stays_a_fail_on_a_run_cut_short(tmp_path):
    cut_short_run(tmp_path / "run", sent=30)
    records = (
        (tmp_path / "run" / "requests-w0.jsonl")
        .read_bytes()
        .replace(b'"status":202', b'"status":429')
    )
    (tmp_path / "run" / "requests-w0.jsonl").write_bytes(
        records.replace(b'"accepted"', b'"rate_limited"')
    )
    outcome = analyze(tmp_path / "run", plots=False)
    assert outcome.exit_code == 1
    assert verdict(outcome.results, None, outcome.summary)["kind"] == "fail"


def test_missing_records_are_unknown_matches_and_make_the_run_incomplete(tmp_path):
    # 100 starts ran to the end; half the records file is gone (the last 51 starts).
    cut_short_run(tmp_path / "run", sent=100, completed=True)
    log = tmp_path / "run" / "requests-w0.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(lines[:49]) + lines[49][:20])
    outcome = analyze(tmp_path / "run", plots=False)
    summary = outcome.summary
    assert summary["unrecorded_starts"] == 51
    assert summary["matches"]["total"] == 100  # the unknown count among the matches
    assert summary["matches"]["unknown"] == 51
    assert summary["matches"]["share_unserved"] == pytest.approx(0.51)
    assert summary["player_wait_s"]["p50"] is None  # half the matches' waits are unknown
    assert outcome.exit_code == 3
    assert verdict(outcome.results, None, summary)["text"] == (
        "INCOMPLETE: 51 of the 100 due starts have no record (51.0%; 1 unreadable record line)"
    )


@pytest.fixture(scope="module")
def simulated_smoke(tmp_path_factory):
    """simulated_smoke is a real run's folder: the smoke scenario simulated for 10 s, its
    records as JSON lines (as a live run writes them)."""
    folder = tmp_path_factory.mktemp("smoke") / "run"
    done = edgebench(
        "simulate", "scenarios/smoke.toml", "--duration", "10s", "--records", "jsonl",
        "--results-dir", folder, "--no-plots",
    )  # fmt: skip
    assert done.exit_code in (0, 1), done.output
    return folder


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cut=st.floats(0.0, 0.999), corrupted=st.lists(st.integers(0, 10_000), max_size=3))
def test_no_truncation_or_corruption_of_a_real_runs_records_passes(
    simulated_smoke, tmp_path, cut, corrupted
):
    import shutil

    folder = tmp_path / f"copy-{time.monotonic_ns()}"
    shutil.copytree(simulated_smoke, folder)
    [log] = folder.glob("requests-*.jsonl")
    lines = log.read_bytes().splitlines(keepends=True)
    for number in corrupted:
        lines[number % len(lines)] = b'{"index": 3, "t_sched": tr\n'
    kept = b"".join(lines)
    end = int(len(kept) * cut) if cut or not corrupted else len(kept)
    log.write_bytes(kept[:end])
    for stale in ("summary.json", "junit.xml", "report.html"):
        (folder / stale).unlink(missing_ok=True)
    outcome = analyze(folder, plots=False)
    lost = outcome.summary["unrecorded_starts"] + outcome.run.skipped_lines
    assert lost > 0  # something was cut or corrupted
    assert outcome.exit_code != 0
    assert verdict(outcome.results, None, outcome.summary)["kind"] in ("incomplete", "fail")


def test_no_plot_of_a_short_run_has_a_flat_sliver_of_an_axis(tmp_path, monkeypatch):
    # The smoke scenario, 10 s simulated with its plots: a placement of one step (drawn as
    # bars), latencies with no spread in a window; every axis whose data are one value is
    # given a range from 0, not matplotlib's +-0.05 around it.
    from analysis import plots

    seen = tmp_path / "axes.jsonl"
    original = plots.save

    def noted(figure, folder, name):
        paths = original(figure, folder, name)
        with seen.open("ab") as out:  # a forked copy draws some: each appends its own
            for axes in figure.axes:
                box = axes.dataLim
                low, high = axes.get_ylim()
                line = {"plot": name, "flat": bool(box.height == 0), "span": float(high - low)}
                out.write(orjson.dumps(line) + b"\n")
        return paths

    monkeypatch.setattr(plots, "save", noted)
    done = edgebench(
        "simulate", "scenarios/smoke.toml", "--duration", "10s", "--results-dir", tmp_path / "r"
    )
    assert done.exit_code in (0, 1), done.output
    drawn = [orjson.loads(line) for line in seen.read_bytes().splitlines()]
    assert {d["plot"] for d in drawn} >= {"placement", "player_wait", "latency", "throughput"}
    slivers = [d for d in drawn if d["flat"] and d["span"] < 0.5]
    assert slivers == []


def test_a_flat_curve_is_drawn_from_zero_and_each_fleet_against_its_own_capacity(tmp_path):
    import pandas as pd

    from analysis import plots
    from analysis.report import _fleets

    figure, axes = plots.new_figure(4, 3)
    axes.plot([0, 1, 2], [0.0, 0.0, 0.0])
    plots._no_flat_axes(figure)
    assert axes.get_ylim() == (0.0, 1.0)
    held = pd.DataFrame({"t": [1.0, 2.0], "fleet-na": [40, 40], "fleet-eu": [3, 5]})
    known = {
        "a1": {"capacity": 20, "status": "ACTIVE", "fleet": "fleet-na"},
        "a2": {"capacity": 20, "status": "ACTIVE", "fleet": "fleet-na"},
        "b1": {"capacity": 20, "status": "ACTIVE", "fleet": "fleet-eu"},
        "b2": {"capacity": 20, "status": "MAINTENANCE", "fleet": "fleet-eu"},  # not counted
    }
    fleets = _fleets(held, known)
    assert {name: (held.tolist(), cap) for name, (held, cap) in fleets.items()} == {
        "fleet-na": ([40, 40], 40),  # full: its line meets its capacity
        "fleet-eu": ([3, 5], 20),
    }
    by_city = pd.DataFrame({"t": [1.0, 2.0], "Chicago": [40, 40], "Frankfurt": [3, 5]})
    paths = plots.fleet_plot(by_city, pd.Series([0, 1]), fleets, tmp_path)
    assert paths[0].stat().st_size > 1000
