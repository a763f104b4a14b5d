"""Unmet demand is never hidden: demand above the limit is said before the run and measured after.

The case that passed silently: a scenario holding 60/s in respect mode offered 39.4/s,
dropped nothing, and passed `share_dropped == 0`; nothing said a third of the demand was
never sent.
"""

import textwrap

import orjson
import pytest

from analysis import load_run, summarize, thresholds, windows
from edgebench.plan.scenario import load_scenario
from edgebench.plan.schedule import Schedule

from .conftest import edgebench
from .test_analysis import T0, request, write

ABOVE = textwrap.dedent(
    """
    name = "above"
    [target]
    application = "my-game"
    version = "1.0.0"
    [rate]
    mode = "respect"
    stages = [
      { kind = "hold", duration = "10s", rate = 20 },
      { kind = "hold", duration = "30s", rate = 60 },
    ]
    [[regions]]
    name = "world"
    countries = ["US"]
    """
)  # fmt: skip


@pytest.fixture
def above(tmp_path):
    path = tmp_path / "above.toml"
    path.write_text(ABOVE)
    return path


def test_the_schedule_knows_its_demand_and_what_the_cap_leaves_out(above):
    schedule = Schedule.from_scenario(load_scenario(above))
    assert schedule.demand_total() == pytest.approx(20 * 10 + 60 * 30)
    assert schedule.capped_rate() == pytest.approx(40 / 1.015)
    assert schedule.above_limit_s() == pytest.approx(30)
    missing = round(schedule.demand_total()) - schedule.count()
    assert missing == pytest.approx(2000 - 200 - 30 * 40 / 1.015, abs=2)
    assert schedule.demand_note() == (
        f"demand above the limit for 30 s (peak 60/s, limit 40/s): capped at 39.4/s, "
        f"{missing:,} of 2,000 starts not made"
    )


def test_a_ramp_above_the_limit_counts_only_the_time_above():
    schedule = Schedule.from_stages([("ramp", 10, 80)], 10, limit=40)
    assert schedule.above_limit_s() == pytest.approx(5)  # 0 -> 80/s: above 40/s for half


def test_scenario_check_and_the_dry_run_say_so(above):
    checked = edgebench("scenario", "check", above)
    assert checked.exit_code == 0, checked.output
    warning = "demand above the limit for 30 s (peak 60/s, limit 40/s): capped at 39.4/s"
    assert f"{above}: warning: {warning}" in checked.stdout
    dry = edgebench("run", above, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert f"warning: {warning}" in dry.stdout


def test_demand_at_the_limit_is_said_too_and_below_it_nothing_is():
    checked = edgebench("scenario", "check", "scenarios/respect-limit.toml")
    assert "warning: demand at the limit for 60 s (40/s): respect mode's margin caps it at " in (
        checked.stdout
    )
    schedule = Schedule.from_stages([("hold", 10, 30)], 10, limit=40)
    assert schedule.demand_note() is None


def capped_run(tmp_path):
    """capped_run: demand of 60/s for 2 s, of which 40/s were sent (respect mode's cap)."""
    folder = tmp_path / "capped"
    records = [request(i) for i in range(80)]
    for i, record in enumerate(records):
        record["t_sched"] = T0 + (i + 0.5) / 40  # as a schedule lays them: at (k + 0.5) / r
        record["t_send"] = record["t_sched"] + 0.001
    write(folder, "requests-c1-w0.jsonl", records)
    manifest = {
        "run_id": "c1",
        "epoch": T0,
        "scenario": {"name": "capped", "mode": "respect", "limit": 40},
        "demand": {"segments": [[0, 3, 60, 60]], "total": 180, "above_limit_s": 3},
    }
    (folder / "manifest.json").write_bytes(orjson.dumps(manifest))
    return folder


def test_the_summary_has_the_demand_next_to_the_offered_rate(tmp_path):
    summary = summarize(load_run(capped_run(tmp_path)))
    assert summary["offered_rate_per_s"] == pytest.approx(40)
    assert summary["demand_rate_per_s"] == pytest.approx(60)
    assert summary["demand_total"] == 120
    assert summary["capped_starts"] == 40
    assert summary["share_capped"] == pytest.approx(1 / 3)
    assert summary["dropped_starts"] == 0  # the cap is not a drop: it is counted apart
    # The demand's matches the cap never sent got no server: counted, and waited for ever.
    matches = summary["matches"]
    assert matches["capped"] == 40
    assert matches["total"] == 120
    assert matches["share_unserved"] == pytest.approx(40 / 120)
    assert summary["player_wait_s"]["p99"] is None
    failed = thresholds.evaluate(
        thresholds.parse(["share_capped == 0"]), thresholds.metrics(summary)
    )
    assert not failed[0].passed


def test_demand_offered_and_accepted_share_one_plot(tmp_path):
    run = load_run(capped_run(tmp_path))
    segments, epoch = run.manifest["demand"]["segments"], run.manifest["epoch"]
    series = windows.throughput(run.requests, 1.0, (segments, epoch))
    assert list(series["demand_per_s"]) == [60.0, 60.0]
    assert list(series["offered_per_s"]) == [40.0, 40.0]
    assert list(series["accepted_per_s"]) == [40.0, 40.0]
    done = edgebench("analyze", run.folder)
    assert done.exit_code == 0, done.output
    assert "demand (before the cap)" in (run.folder / "throughput.svg").read_text()
    assert "capped starts" in done.stdout
