"""`edgebench search`: bracket and bisect to a knee known by hand.

The knee core is tested with made-up verdicts; the command with simulations of a world
whose answer is a direct count: one location of c slots, every deployment holding its
slot for exactly boot + match = 10 s, even arrivals. No request is ever refused while
at most c arrivals fall in any 10 s, so the highest rate without a 422 is c / 10 per
second, and the fewest slots for a rate r is the most arrivals in 10 s: ceil(10 r).
"""

import math
import textwrap

import orjson
import pytest
from click.testing import CliRunner

from edgebench.cli import main
from edgebench.plan.scenario import load_scenario
from edgebench.search.knee import Knee, Probe
from edgebench.search.space import parse_space, world_toml
from emulator import load_world

# Started processes and servers, timed: one after another, in the first group of live
# tests (the second runs on the other worker: Makefile).
pytestmark = pytest.mark.xdist_group("live")


def knee_of(threshold: float, wants: str, start: float, **options) -> Knee:
    def probe(value: float) -> Probe:
        passed = value <= threshold if wants == "higher" else value >= threshold
        return Probe(value, passed)

    return Knee(probe, start=start, wants=wants, **options)


@pytest.mark.parametrize("start", [0.3, 1.0, 50.0])
def test_the_highest_passing_value_is_found_within_the_precision(start):
    knee = knee_of(7.3, "higher", start, precision=0.02, max_probes=30)
    answer = knee.run()
    assert 7.3 * 0.98 <= answer <= 7.3
    assert all(p.passed == (p.value <= 7.3) for p in knee.probes)


def test_the_fewest_whole_slots_are_found_exactly_even_from_zero():
    knee = knee_of(22, "lower", 0, whole=True, max_probes=30)
    assert knee.run() == 22
    assert all(p.value == int(p.value) for p in knee.probes)


def test_no_answer_when_even_the_floor_fails_and_the_probes_are_bounded():
    knee = knee_of(-1.0, "higher", 1.0, max_probes=6)
    assert knee.run() is None
    assert len(knee.probes) == 6


WORLD = """
[placement]
max_distance_km = 20000

[lifecycle]
boot_s = 2.0
cached_boot_s = 2.0
lifetime_s = 8.0

[[applications]]
name = "my-game"
versions = ["1.0.0"]

[[locations]]
city = "Frankfurt"
country = "DE"
latitude = 50.1109
longitude = 8.6821
capacity = {capacity}

[[private_hosts]]
id = "fleet-fra-1"
location = "Frankfurt"
capacity = 4
"""


def counted_world(tmp_path, capacity: int, rate: float):
    (tmp_path / "world.toml").write_text(WORLD.format(capacity=capacity))
    path = tmp_path / "knee.toml"
    path.write_text(
        textwrap.dedent(
            f"""
            name = "knee"
            seed = 2
            [target]
            application = "my-game"
            version = "1.0.0"
            world = "world.toml"
            [rate]
            mode = "exceed"
            stages = [{{ kind = "hold", duration = "60s", rate = {rate} }}]
            [[regions]]
            name = "germany"
            countries = ["DE"]
            """
        )
    )
    return path


def search(*args: str):
    return CliRunner().invoke(main, ["search", *args])


def test_search_finds_the_highest_rate_a_counted_world_serves(tmp_path):
    scenario = counted_world(tmp_path, capacity=20, rate=4.0)  # the knee: 20 / 10 s = 2/s
    folder = tmp_path / "search"
    done = search(str(scenario), "--check", "share_422 == 0", "--vary", "rate",
                  "--results-dir", str(folder))  # fmt: skip
    assert done.exit_code == 0, done.output
    result = orjson.loads((folder / "search.json").read_bytes())
    assert 2.0 * 0.98 <= result["answer_rate_per_s"] <= 2.0 + 1e-9
    assert f"highest rate meeting every check: {result['answer_rate_per_s']:g}/s" in done.output
    assert result["precision"] == 0.02
    for probe in result["probes"]:
        assert probe["passed"] == (probe["share_422"] == 0)
        assert (tmp_path / "search" / probe["folder"] / "summary.json").exists()
    page = (folder / "search.html").read_text()
    assert "data:image/png;base64," in page
    assert "Answer:" in page


@pytest.mark.parametrize("jobs", ["1", "3"])
def test_search_finds_the_fewest_slots_at_a_city(tmp_path, jobs):
    scenario = counted_world(tmp_path, capacity=20, rate=2.15)  # at most 22 in any 10 s
    folder = tmp_path / "search"
    done = search(str(scenario), "--check", "share_422 == 0", "--vary", "capacity:Frankfurt",
                  "--jobs", jobs, "--results-dir", str(folder))  # fmt: skip
    assert done.exit_code == 0, done.output
    result = orjson.loads((folder / "search.json").read_bytes())
    assert result["answer"] == math.ceil(10 * 2.15) == 22  # the same answer, probes at once
    assert "slots at Frankfurt 22" in done.output
    numbers = sorted(int(p["folder"].split("-")[1]) for p in result["probes"])
    assert numbers == list(range(1, len(numbers) + 1))  # numbered in the order asked
    assert not list(folder.glob("probe-*/requests-*"))  # summaries kept, not records


@pytest.mark.parametrize("wants", ["higher", "lower"])
def test_k_section_finds_the_knee_of_bisection_in_fewer_rounds(wants):
    asked = []

    def probe_many(values):
        asked.append(values)
        return [Probe(v, v <= 37 if wants == "higher" else v >= 37) for v in values]

    options = {"start": 5.0, "wants": wants, "whole": True, "max_probes": 40, "precision": 0}
    alone = Knee(lambda v: probe_many([v])[0], **options)
    assert alone.run() == 37
    rounds_alone, asked[:] = len(asked), []
    together = Knee(lambda v: probe_many([v])[0], probe_many=probe_many, jobs=3, **options)
    assert together.run() == 37
    assert len(asked) < rounds_alone
    assert max(len(values) for values in asked) <= 3


def test_a_search_that_cannot_pass_exits_1(tmp_path):
    scenario = counted_world(tmp_path, capacity=20, rate=4.0)
    done = search(str(scenario), "--check", "share_202 > 1.5", "--vary", "rate",
                  "--max-probes", "3", "--results-dir", str(tmp_path / "never"))  # fmt: skip
    assert done.exit_code == 1, done.output
    assert "no answer: even the lowest value tried fails a check" in done.output


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--vary", "speed", "--check", "share_422 < 0.01"], "--vary 'speed': not a quantity"),
        (["--vary", "capacity:Atlantis", "--check", "share_422 < 0.01"], "no city or private host"),
        (["--vary", "rate"], "--check: give at least one"),
        (["--vary", "rate", "--check", "share_422 < baseline"], "numbers only"),
        (["--vary", "rate", "--check", "share_422 < 0.01", "--precision", "200%"], "--precision"),
    ],
)
def test_bad_search_input_is_one_line_and_exit_2(tmp_path, args, says):
    scenario = counted_world(tmp_path, capacity=20, rate=4.0)
    done = search(str(scenario), *args, "--results-dir", str(tmp_path / "bad"))
    assert done.exit_code == 2, done.output
    assert says in done.output
    assert "Traceback" not in done.output


def test_a_capacity_world_is_written_back_as_the_same_world(tmp_path):
    scenario = load_scenario(counted_world(tmp_path, capacity=20, rate=4.0))
    space = parse_space("capacity:fleet-fra-1", scenario)
    variant = space.scenario_at(scenario, 9, tmp_path / "probe")
    world = load_world(variant.world_file)
    assert world.private_hosts["fleet-fra-1"].capacity == 9
    assert world.locations[0].capacity == 20
    again = tmp_path / "again.toml"
    again.write_text(world_toml(space.raw_world))
    assert load_world(again).lifecycle == load_world(space.world_file).lifecycle


def test_a_live_search_runs_each_probe_as_edgebench_run_would(tmp_path, monkeypatch):
    # Each live probe is `edgebench run` with the probe's value: the runner is replaced here
    # by one that reports what it was asked (a live probe is a whole run; bench/ has those).
    import edgebench.runner.run as runner

    asked = []

    def fake_run(plan):
        asked.append(plan)
        factor = float(plan.rate_factor)
        latency = dict.fromkeys(["p50", "p90", "p95", "p99", "max"], 1.0)
        summary = {"requests_total": 10, "requests_sent": 10, "dropped_starts": 0,
                   "outcome_counts": {"accepted": 10 if factor <= 0.5 else 9,
                                      "allocation_failure": 0 if factor <= 0.5 else 1},
                   "offered_rate_per_s": 4 * factor, "accepted_rate_per_s": 4 * factor,
                   "latency_ms": {"from_send": latency, "from_schedule": latency},
                   "time_to_ready_s": dict.fromkeys(["p50", "p95", "p99"])}  # fmt: skip
        plan.results_dir.mkdir(parents=True, exist_ok=True)
        (plan.results_dir / "summary.json").write_bytes(orjson.dumps(summary))
        return 0

    monkeypatch.setattr(runner, "run", fake_run)
    scenario = counted_world(tmp_path, capacity=20, rate=4.0)
    folder = tmp_path / "live"
    done = search(str(scenario), "--check", "share_422 == 0", "--vary", "rate", "--live",
                  "--max-probes", "4", "--results-dir", str(folder))  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "live search against the embedded emulator: at most 4 probes" in done.output
    assert [plan.rate_factor for plan in asked] == ["1.0", "0.5", "0.75", "0.625"]
    assert all(plan.results_dir.parent == folder for plan in asked)
    result = orjson.loads((folder / "search.json").read_bytes())
    assert (result["mode"], result["answer"]) == ("live", 0.5)


def test_a_live_search_against_a_remote_host_prints_its_plan_and_the_rules(tmp_path):
    from pathlib import Path

    from edgebench.plan.scenario import load_scenario
    from edgebench.search.command import SearchPlan, live_plan_text

    scenario = load_scenario(counted_world(tmp_path, capacity=20, rate=4.0))
    plan = SearchPlan(Path("x"), ("share_422 == 0",), "rate", live=True, max_probes=6,
                      host="https://api.edgegap.com")  # fmt: skip
    text = live_plan_text(plan, scenario, parse_space("rate", scenario))
    assert "at most 6 probes of 60 s" in text
    assert "largest rate it may try: 256.0/s (factor 64)" in text
    assert "the real-API rules (token, a budget of 20 deployments, cleanup)" in text
    assert "at most 120 deployments" in text


def test_confirm_ends_with_one_live_run_at_the_answer(tmp_path, monkeypatch):
    import edgebench.runner.run as runner

    asked = []
    monkeypatch.setattr(runner, "run", lambda plan: asked.append(plan) or 1)
    scenario = counted_world(tmp_path, capacity=20, rate=4.0)
    folder = tmp_path / "confirmed"
    done = search(str(scenario), "--check", "share_422 == 0", "--vary", "capacity:Frankfurt",
                  "--rate-factor", "0.5", "--confirm", "--results-dir", str(folder))  # fmt: skip
    answer = orjson.loads((folder / "search.json").read_bytes())["answer"]
    assert answer == 20  # 2/s for 10 s each: 20 slots
    [plan] = asked
    assert plan.results_dir == folder / "confirm"
    assert plan.world == folder / "confirm" / "world.toml"
    assert load_world(plan.world).locations[0].capacity == 20
    assert done.exit_code == 1  # the confirming run's verdict


LIMIT_KNOB = """
name = "limit-knob"
seed = 3
[target]
application = "my-game"
version = "1.0.0"
[client]
preset = "edgegap-sdk"
[rate]
mode = "respect"
stages = [{ kind = "hold", duration = "20s", rate = 60 }]
[[regions]]
name = "europe"
countries = ["DE", "FR"]
"""


def test_the_lowest_limit_for_a_queue_wait_is_the_fluid_queues(tmp_path):
    # 60 matches/s for 20 s against a limit L: the queue grows at 60 - L a second, so a match
    # due at t waits t (60 - L) / L, and the p95 wait is 19 (60 - L) / L: under 2 s from
    # L = 1140 / 21 = 54.3, i.e. 55/s.
    scenario = tmp_path / "knob.toml"
    scenario.write_text(LIMIT_KNOB)
    args = ["search", str(scenario), "--vary", "limit", "--check", "wait_p95_s < 2"]
    done = CliRunner().invoke(main, [*args, "--results-dir", str(tmp_path / "s")])
    assert done.exit_code == 0, done.output
    assert "lowest limit meeting every check: 55/s: ask Edgegap for it" in done.output


def test_the_limit_is_a_knob_of_run_simulate_and_the_plan(tmp_path):
    scenario = tmp_path / "knob.toml"
    scenario.write_text(LIMIT_KNOB)
    dry = CliRunner().invoke(main, ["run", str(scenario), "--dry-run", "--limit", "60"])
    assert "limit 60/s" in dry.output
    folder = tmp_path / "sim"
    args = ["simulate", str(scenario), "--limit", "60", "--duration", "5s", "--no-plots"]
    args += ["--results-dir", str(folder)]
    done = CliRunner().invoke(main, args)
    assert done.exit_code in (0, 1), done.output
    manifest = orjson.loads((folder / "manifest.json").read_bytes())
    assert manifest["scenario"]["limit"] == 60
    assert manifest["emulator"]["rate_limits"]["deploy"] == 60  # the model enforces it too
    summary = orjson.loads((folder / "summary.json").read_bytes())
    assert summary["outcome_counts"].get("rate_limited", 0) == 0
    assert summary["player_wait_s"]["p95"] < 0.5  # 60/s fits under a limit of 60
    planned = CliRunner().invoke(main, ["scenario", "plan", str(scenario), "--limit", "60"])
    assert "limit 60/s" in planned.output
    bad = CliRunner().invoke(main, ["simulate", str(scenario), "--limit", "0"])
    assert bad.exit_code == 2


def test_a_live_run_gives_the_limit_to_the_embedded_emulator_and_to_locust(tmp_path):
    from edgebench.plan.overrides import Overrides, RunSpec
    from edgebench.realapi.safety import Policy
    from edgebench.runner.processes import EmulatorProcess
    from edgebench.runner.run import RunPlan, locust_command

    scenario = tmp_path / "knob.toml"
    scenario.write_text(LIMIT_KNOB)
    plan = RunPlan(scenario, limit=52)
    spec = RunSpec(str(scenario), Overrides.of(plan))
    emulator = EmulatorProcess(spec, spec.resolve(), 1.0, tmp_path).command()
    assert RunSpec.loads(emulator[emulator.index("--run-spec") + 1]).resolve().rate.limit == 52
    policy = Policy(remote=False, max_deployments=0, cleanup=False)
    locust = locust_command(plan, spec, "http://127.0.0.1:9", tmp_path / "r", policy)
    assert RunSpec.loads(locust[locust.index("--run-spec") + 1]) == spec
