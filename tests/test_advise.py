"""`edgebench advise` and its instant answers, against theory worked here.

- Erlang B: a fleet of hosts of 5 slots takes Poisson fleet deploys (10/s) held for the
  boot and an exponential match (5 s mean); the fewest hosts keeping overflow under 5% follow
  from Erlang B, computed here with its own recursion. advise must land within one host,
  and the simulated overflow just below the answer must be Erlang B's to a point.
- The fluid queue: 60 matches/s for 20 s against a limit L queue up; the last waits
  20 (60 - L) / L, so a wait of at most 2 s needs L >= 54.5: 55/s.
- The cheapest hosts: a made-up cost that falls then rises, walked from the least passing.
"""

import math
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from analysis.thresholds import metrics
from edgebench._errors import EdgebenchError
from edgebench.cli import main
from edgebench.plan.queue import lowest_limit
from edgebench.plan.scenario import load_scenario
from edgebench.plan.schedule import Schedule
from edgebench.plan.sizing import erlang_b, hosts_for, slots_for
from edgebench.search.knee import Probe, cheapest
from emulator import load_world

from .test_search import LIMIT_KNOB

ERLANG_WORLD = """
[lifecycle]
cached_boot_s = { distribution = "lognormal", median = 1.5, sigma = 0.25 }
lifetime_s = { distribution = "exponential", mean = 5 }
[[applications]]
name = "my-game"
versions = ["1.0.0"]
vcpu = 1
memory_gb = 2
[[locations]]
city = "Frankfurt"
country = "DE"
latitude = 50.1109
longitude = 8.6821
capacity = 1000
cached = true
[[private_hosts]]
id = "eu"
fleet = "fleet-eu"
location = "Frankfurt"
capacity = 5
count = 10
"""
ERLANG = """
name = "erlang"
seed = 11
[target]
application = "my-game"
version = "1.0.0"
world = "world.toml"
[mix]
deploy = 0
fleet_deploy = 1
[players]
sizes = [2]
[rate]
mode = "respect"
arrivals = "poisson"
stages = [{ kind = "hold", duration = "15m", rate = 10 }]
[[regions]]
name = "europe"
countries = ["DE"]
private_fleet = "fleet-eu"
"""
HELD_S = 5 + 1.5 * math.exp(0.25**2 / 2)  # the match, and the cached boot's mean


def blocked(slots: int, load: float) -> float:
    """blocked is Erlang B by its definition: (A^c / c!) / sum over k <= c of A^k / k!."""
    terms = [math.exp(k * math.log(load) - math.lgamma(k + 1)) for k in range(slots + 1)]
    return terms[-1] / sum(terms)


def test_erlang_b_is_the_formula_and_the_slots_its_least():
    for slots, load in ((1, 0.5), (10, 7.0), (105, 101.0), (70, 65.5)):
        assert erlang_b(slots, load) == pytest.approx(blocked(slots, load), rel=1e-9)
    load = 10 * HELD_S
    least = slots_for(load, 0.05)
    assert blocked(least, load) <= 0.05 < blocked(least - 1, load)
    assert hosts_for(load, 0.05, 5) == math.ceil(least / 5)
    assert slots_for(0.0, 0.05) == 0


def erlang_files(tmp_path):
    (tmp_path / "world.toml").write_text(ERLANG_WORLD)
    scenario = tmp_path / "erlang.toml"
    scenario.write_text(ERLANG)
    return scenario


def advise(*args: str):
    return CliRunner().invoke(main, ["advise", *map(str, args)])


def test_advise_finds_the_erlang_b_hosts_within_one_and_confirms_them_live(tmp_path, monkeypatch):
    import edgebench.runner.run as runner

    asked = []
    monkeypatch.setattr(runner, "run", lambda plan: asked.append(plan) or 0)
    scenario = erlang_files(tmp_path)
    folder = tmp_path / "advice"
    done = advise(scenario, "--check", "share_overflow < 0.05", "--vary", "hosts:fleet-eu",
                  "--warm-start", "--live", "--results-dir", folder)  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "from " in done.output
    assert "an estimate" in done.output
    facts = orjson.loads((folder / "advice.json").read_bytes())
    theory = hosts_for(10 * HELD_S, 0.05, 5)
    assert abs(facts["answers"]["hosts:fleet-eu"] - theory) <= 1
    # One host fewer, from the one pass's curve (every count from one simulation): Erlang
    # B's blocking there, and above the bound.
    answer = int(facts["answers"]["hosts:fleet-eu"])
    curve = facts["curves"]["fleet-eu"]
    below = curve["overflow_share"][answer - 2]  # index: hosts - 1
    assert below == pytest.approx(blocked(5 * (answer - 1), 10 * HELD_S), abs=0.01)
    assert below >= 0.05
    assert len(facts["probes"]) == 2  # the one pass and the answer's confirmation
    assert facts["met"]
    assert (folder / "advice.html").is_file()
    assert facts["instant"]["hosts"]["fleet-eu"] == theory  # the formula, before a probe
    # Each probe keeps its evidence (summary, world), not its records (no --keep-records).
    assert list(folder.glob("probe-*/summary.json"))
    assert not list(folder.glob("probe-*/requests-*"))
    assert f"edgebench simulate {scenario} --world {folder}/probe-" in done.output
    # The printed rerun reproduces the answer's probe, figure for figure.
    line = next(x for x in done.output.splitlines() if "the answer's run: " in x)
    words = line.split("the answer's run: edgebench ", 1)[1].split()
    again = CliRunner().invoke(
        main, [*words, "--results-dir", str(tmp_path / "again"), "--no-plots"]
    )
    assert again.exit_code in (0, 1), again.output
    rerun = orjson.loads((tmp_path / "again" / "summary.json").read_bytes())
    probe = next(p for p in facts["probes"] if p["point"] == facts["answers"])
    assert rerun["fleet"]["overflow_share"] == pytest.approx(probe["share_overflow"], abs=1e-6)
    # --live: `edgebench run` (every rule of a run) on the answer's world, started warm too.
    [plan] = asked
    assert plan.results_dir == folder / "confirm"
    assert plan.warm_start is True
    hosts = load_world(plan.world).fleet_hosts("fleet-eu")
    assert len(hosts) == facts["answers"]["hosts:fleet-eu"]


def test_the_limit_for_a_queue_wait_is_the_fluid_queues_from_the_formula_and_advise(tmp_path):
    scenario = tmp_path / "knob.toml"
    scenario.write_text(LIMIT_KNOB)
    limit, walk = lowest_limit(Schedule.from_scenario(load_scenario(scenario)), 2.0)
    assert limit == 55
    assert walk.longest_wait_s <= 2
    folder = tmp_path / "advice"
    done = advise(scenario, "--check", "wait_p95_s < 2", "--results-dir", folder)
    assert done.exit_code == 0, done.output
    assert "ask Edgegap for a limit of 55/s" in done.output
    facts = orjson.loads((folder / "advice.json").read_bytes())
    assert facts["instant"]["limit"] == 55
    tried = {p["point"]["limit"]: p["passed"] for p in facts["probes"]}
    assert tried[55]
    assert not tried[54]


def test_advise_says_when_no_answer_can_meet_the_checks_and_refuses_bad_input(tmp_path):
    scenario = tmp_path / "knob.toml"
    scenario.write_text(LIMIT_KNOB)
    never = advise(scenario, "--check", "wait_p50_s < 0.0001", "--max-probes", "3",
                   "--results-dir", tmp_path / "never")  # fmt: skip
    assert never.exit_code == 1, never.output
    assert "no answer meets every check" in never.output
    cases = [
        (["--vary", "hosts:nowhere"], "no region of"),
        (["--vary", "speed"], "not a knob"),
        (["--minimize", "cost"], "has no [costs]"),
        ([], "--check: give at least one"),
    ]
    for options, message in cases:
        checks = [] if not options else ["--check", "wait_p95_s < 2"]
        done = advise(scenario, *checks, *options, "--results-dir", tmp_path / "bad")
        assert done.exit_code == 2, done.output
        assert message in done.output
        assert "Traceback" not in done.output


def test_the_cheapest_is_walked_up_from_the_least_passing_value():
    def probe(value: float) -> Probe:
        return Probe(value, value >= 12, {"cost": (value - 31) ** 2 + 5})

    tried = cheapest(probe, 12.0, lambda p: p.metrics["cost"], max_probes=20)
    best = min((p for p in tried if p.passed), key=lambda p: p.metrics["cost"])
    assert best.value == 31
    assert len(tried) <= 20
    rising = cheapest(probe, 40.0, lambda p: p.metrics["cost"], max_probes=20)
    assert min(rising, key=lambda p: p.metrics["cost"]).value == 40  # dearer from the start


def test_search_answers_in_whole_hosts_of_a_fleet(tmp_path):
    scenario = erlang_files(tmp_path)
    args = ["search", str(scenario), "--vary", "hosts:fleet-eu", "--check",
            "share_overflow < 0.05", "--results-dir", str(tmp_path / "s")]  # fmt: skip
    done = CliRunner().invoke(main, args)
    assert done.exit_code == 0, done.output
    assert "fewest hosts meeting every check:" in done.output
    answer = orjson.loads((tmp_path / "s" / "search.json").read_bytes())["answer"]
    # Started empty (a search does not warm): fewer than the steady state's, never more.
    assert 1 <= answer <= hosts_for(10 * HELD_S, 0.05, 5)
    bad = CliRunner().invoke(main, ["search", str(scenario), "--vary", "hosts:fleet-xx",
                                    "--check", "share_overflow < 0.05"])  # fmt: skip
    assert bad.exit_code == 2
    assert "fleet 'fleet-xx'" in bad.output


def test_search_minimize_cost_answers_the_cheapest_passing_probe(tmp_path):
    scenario = erlang_files(tmp_path)
    prices = tmp_path / "prices.toml"
    # A slot-hour on a host costs a fifth of a cloud deployment's: hosts pay while busy.
    prices.write_text(
        "[costs]\ncloud_vcpu_hour = 1.0\nprivate = { fleet-eu = { per_hour = 1.0 } }\n"
    )
    folder = tmp_path / "s"
    args = ["search", str(scenario), "--vary", "hosts:fleet-eu", "--check",
            "share_overflow < 0.3", "--minimize", "cost", "--costs", str(prices),
            "--duration", "3m", "--max-probes", "12", "--results-dir", str(folder)]  # fmt: skip
    done = CliRunner().invoke(main, args)
    assert done.exit_code == 0, done.output
    assert "cheapest hosts meeting every check:" in done.output
    result = orjson.loads((folder / "search.json").read_bytes())
    passing = [p for p in result["probes"] if p["passed"]]
    cheapest_probe = min(passing, key=lambda p: (p["cost_per_day"], p["value"]))
    assert result["answer"] == cheapest_probe["value"]
    assert result["minimize"] == "cost"
    # The cheapest over the whole range (every count from one simulation): a host fewer or
    # more, simulated apart, costs more or fails.
    answer = int(result["answer"])
    probe = next(p for p in result["probes"] if p["value"] == answer)
    world = (folder / probe["folder"] / "world.toml").read_text()
    assert f"count = {answer}" in world
    for other in (answer - 1, answer + 1):
        (tmp_path / f"w{other}.toml").write_text(
            world.replace(f"count = {answer}", f"count = {other}")
        )
        apart, other_world = tmp_path / f"apart{other}", tmp_path / f"w{other}.toml"
        again = ["simulate", str(scenario), "--world", str(other_world), "--costs", str(prices),
                 "--duration", "3m", "--no-plots", "--cold-start",
                 "--results-dir", str(apart)]  # fmt: skip
        CliRunner().invoke(main, again)
        summary = orjson.loads((apart / "summary.json").read_bytes())
        values = metrics(summary)
        assert (
            values["share_overflow"] >= 0.3
            or values["cost_per_day"] >= cheapest_probe["cost_per_day"]
        )
    unpriced = CliRunner().invoke(main, [*args[:6], "--minimize", "cost"])
    assert unpriced.exit_code == 2
    assert "has no [costs]" in unpriced.output


def test_the_queue_walked_in_closed_form_is_the_walk_window_by_window():
    import random

    from edgebench.plan.queue import _walk, _walk_without_leaving

    draw = random.Random(3)
    for _ in range(500):
        arrivals = [draw.choice([0, 0, 1, 5, 20, 80]) for _ in range(draw.randint(1, 60))]
        quota = draw.randint(1, 50)
        if sum(arrivals):
            walked = _walk(arrivals, quota, None)._replace(waiting=())  # the plot's curve
            assert _walk_without_leaving(arrivals, quota) == walked


def test_every_override_reaches_each_run_a_command_derives(tmp_path, monkeypatch):
    # The overrides' names come from the class: one added later must reach every path.
    from types import SimpleNamespace

    import edgebench.runner.run as runner
    from edgebench.advise.command import AdvisePlan, _confirm, rerun_command
    from edgebench.plan.overrides import OVERRIDDEN
    from edgebench.search.command import SearchPlan, _run_at

    values = {
        "duration": "7s", "world": tmp_path / "w.toml", "seed": 5, "rate_mode": "exceed",
        "rate_factor": "1.5", "limit": 33, "costs": tmp_path / "c.toml",
    }  # fmt: skip
    assert set(values) == set(OVERRIDDEN)  # a new override needs a value here
    asked = []
    monkeypatch.setattr(runner, "run", lambda plan: asked.append(plan) or 0)
    search = SearchPlan(Path("scenarios/smoke.toml"), ("share_422 < 0.01",), "rate", **values)
    for kind, knob in (("rate", "rate_factor"), ("limit", "limit"), ("capacity", "world")):
        _run_at(search, SimpleNamespace(kind=kind), 2.0, tmp_path / kind)  # a probe, a confirm
        plan = asked.pop()
        assert {n: getattr(plan, n) for n in OVERRIDDEN if n != knob} == {
            n: v for n, v in values.items() if n != knob
        }, kind
    advise_plan = AdvisePlan(Path("scenarios/smoke.toml"), ("wait_p99_s < 5",), **values)
    advice = SimpleNamespace(answers={"limit": 41.0}, warm=None, scenario_at=lambda *_: None)
    _confirm(advise_plan, advice, tmp_path)  # advise --live
    plan = asked.pop()
    assert {n: getattr(plan, n) for n in OVERRIDDEN} == values | {"limit": 41}
    words = rerun_command(advise_plan, tmp_path, {"limit": 41.0}).split()
    for name in OVERRIDDEN:
        assert f"--{name.replace('_', '-')}" in words, name
    assert words[words.index("--limit") + 1] == "41"


@pytest.mark.parametrize("command", ["advise", "search"])
def test_the_cheapest_over_a_slice_of_a_forecast_is_refused_unless_asked_knowingly(command):
    # A day's cost from six hours scaled to 24 would price the peak as if it lasted all day.
    args = [command, "scenarios/launch-fleet.toml", "--check", "share_overflow:americas < 0.05",
            "--vary", "hosts:fleet-na", "--minimize", "cost", "--duration", "6h"]  # fmt: skip
    done = CliRunner().invoke(main, args)
    assert done.exit_code == 2
    assert done.stderr.startswith(
        "Error: --minimize cost: scenarios/launch-fleet.toml runs 6 h of its forecast's 24 h"
    )
    assert "--window-cost" in done.stderr
    from edgebench.costs import refuse_window_cost
    from edgebench.plan.overrides import with_duration

    sliced = with_duration(load_scenario("scenarios/launch-fleet.toml"), "6h")
    refuse_window_cost(sliced, knowingly=True)  # --window-cost: priced as asked
    refuse_window_cost(load_scenario("scenarios/launch-fleet.toml"), knowingly=False)  # a day


def test_a_fleet_written_a_host_an_entry_is_varied_in_hosts_not_in_entries(tmp_path):
    # 40 Frankfurt hosts are often written one entry a host: 5 hosts must be 5, not 5 x 40.
    import tomllib

    from edgebench.advise.command import _counted, _refuse_unlike_entries
    from edgebench.search.space import world_toml

    head = ERLANG_WORLD.split("[[private_hosts]]")[0]
    one_each = "".join(
        f'[[private_hosts]]\nid = "eu-{k}"\nfleet = "fleet-eu"\nlocation = "Frankfurt"\n'
        "capacity = 5\n"
        for k in range(40)
    )
    raw = tomllib.loads(head + one_each)
    _refuse_unlike_entries(raw, ["hosts:fleet-eu"], tmp_path / "w.toml")  # alike: varied
    (tmp_path / "five.toml").write_text(
        world_toml(raw | {"private_hosts": _counted(raw, {"fleet-eu": 5})})
    )
    assert len(load_world(tmp_path / "five.toml").fleet_hosts("fleet-eu")) == 5
    raw["private_hosts"][3]["capacity"] = 8  # one host unlike the others: no one count
    with pytest.raises(
        EdgebenchError, match="writes fleet 'fleet-eu' as 40 \\[\\[private_hosts\\]\\]"
    ):
        _refuse_unlike_entries(raw, ["hosts:fleet-eu"], tmp_path / "w.toml")


TINY_WORLD = """
[lifecycle]
lifetime_s = { distribution = "fixed", value = 600 }
[[applications]]
name = "my-game"
versions = ["1.0.0"]
[[locations]]
city = "Frankfurt"
country = "DE"
latitude = 50.1109
longitude = 8.6821
capacity = 5
"""


def test_a_limit_that_moves_no_failing_check_stops_and_says_what_would(tmp_path):
    # Five slots for 1,200 matches: 422s for no room at any limit. Raising the limit cannot
    # help, and the one pass (every limit's queue from one simulation) sees it at once: a
    # limit no match waits for fails too. It names that probe as the last tried.
    (tmp_path / "world.toml").write_text(TINY_WORLD)
    scenario = tmp_path / "knob.toml"
    scenario.write_text(
        LIMIT_KNOB.replace('version = "1.0.0"', 'version = "1.0.0"\nworld = "world.toml"')
    )
    folder = tmp_path / "advice"
    done = advise(scenario, "--check", "share_unserved < 0.01", "--results-dir", folder)
    assert done.exit_code == 1, done.output
    facts = orjson.loads((folder / "advice.json").read_bytes())
    assert len(facts["probes"]) == 1  # not 30 probes up to thousands a second
    last = facts["probes"][-1]["point"]["limit"]
    assert f"the last tried: limit {last:g})" in done.output
    assert "which no match waits for, fails share_unserved" in done.output
    assert "capacity would" in facts["stuck"]


def test_a_client_that_does_not_queue_stops_raising_a_limit_that_makes_it_worse(tmp_path):
    # A naive client: the limit caps what it sends, so a higher limit sends more into five
    # slots, and more are refused for no room: the unserved share rises with the limit.
    (tmp_path / "world.toml").write_text(TINY_WORLD)
    scenario = tmp_path / "knob.toml"
    told = LIMIT_KNOB.replace('version = "1.0.0"', 'version = "1.0.0"\nworld = "world.toml"')
    scenario.write_text(told.replace('preset = "edgegap-sdk"', 'preset = "naive"'))
    folder = tmp_path / "advice"
    args = ("--check", "share_unserved < 0.01", "--jobs", "1", "--results-dir", folder)
    done = advise(scenario, *args)
    assert done.exit_code == 1, done.output
    facts = orjson.loads((folder / "advice.json").read_bytes())
    limits = [probe["point"]["limit"] for probe in facts["probes"]]
    assert len(limits) <= 5, limits  # not 30 probes up to thousands a second
    assert max(limits) >= 2 * min(limits)
    assert "brought no failing check nearer (share_unserved 0.6533 -> 0.9958)" in facts["stuck"]


def test_a_windows_formulas_size_the_window_not_the_days_busiest_hour():
    from edgebench.advise.instant import instant_answers
    from edgebench.platform import scenario_world

    day = load_scenario("scenarios/launch-fleet.toml")
    world = scenario_world(day)
    whole = instant_answers(day, world, 0.05, 5.0, True).peak_hosts
    demand = day.demand.model_copy(update={"window": [8 * 3600.0, 10 * 3600.0]})
    morning = day.model_copy(update={"demand": demand})  # 08:00-10:00 UTC: the Americas sleep
    window = instant_answers(morning, world, 0.05, 5.0, True).peak_hosts
    assert whole["americas"] == 60  # its busiest hour, 01:00 UTC
    assert window["americas"] < whole["americas"] / 2
