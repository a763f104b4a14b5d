"""Every fleet size from one simulation: the one pass's figures at N are a separate
simulation's at N with the same seed, to the deployment."""

import numpy as np
import orjson
import pytest

from analysis.thresholds import metrics
from edgebench.advise.onepass import OnePass, Sizing
from edgebench.plan.overrides import Overrides, planned
from edgebench.simulate.command import simulate_all
from edgebench.simulate.pool import Job, default_jobs

WORLD = """
[lifecycle]
lifetime_s = {{ distribution = "lognormal", median = 40, sigma = 0.6 }}
boot_s = {{ distribution = "lognormal", median = 3, sigma = 0.3 }}
cached_boot_s = 1.5  # no draw: a match placed elsewhere must not move the others' draws
[[applications]]
name = "my-game"
versions = ["1.0.0"]
vcpu = 0.5
memory_gb = 1
[[locations]]
city = "Montreal"
country = "CA"
latitude = 45.5
longitude = -73.57
capacity = 100000
cached = true
[[locations]]
city = "Frankfurt"
country = "DE"
latitude = 50.11
longitude = 8.68
capacity = 100000
[[private_hosts]]
id = "mtl"
fleet = "fleet-na"
location = "Montreal"
capacity = 2
count = {na}
[[private_hosts]]
id = "fra"
fleet = "fleet-eu"
location = "Frankfurt"
capacity = 3
count = {eu}
"""
SCENARIO = """
name = "one-pass"
seed = 11
[target]
application = "my-game"
version = "1.0.0"
world = "{world}"
[mix]
deploy = 0
fleet_deploy = 1
[rate]
mode = "exceed"
arrivals = "poisson"
stages = [{{ kind = "hold", duration = "90s", rate = 3 }}]
[[regions]]
name = "quebec"
weight = 2
cities = [{{ name = "Montreal", country = "CA", latitude = 45.5, longitude = -73.57 }}]
ip_share = 0.0
private_fleet = "fleet-na"
[[regions]]
name = "germany"
cities = [{{ name = "Frankfurt", country = "DE", latitude = 50.11, longitude = 8.68 }}]
ip_share = 0.0
private_fleet = "fleet-eu"
[costs]
cloud_vcpu_hour = 0.1
cloud_gb_hour = 0.01
private = {{ fleet-na = {{ per_hour = 0.04 }}, fleet-eu = {{ per_hour = 0.07 }} }}
"""
SIZES = [(80, 80), (3, 1), (30, 4), (12, 2)]  # the big one first: (fleet-na, fleet-eu) hosts


def _jobs(tmp_path):
    jobs = []
    for na, eu in SIZES:
        folder = tmp_path / f"na{na}-eu{eu}"
        folder.mkdir()
        (folder / "world.toml").write_text(WORLD.format(na=na, eu=eu))
        (folder / "s.toml").write_text(SCENARIO.format(world="world.toml"))
        scenario = planned(folder / "s.toml", Overrides())
        jobs.append(Job(scenario, folder / "sim", keep_records=False, placements=True))
    return jobs


def test_one_pass_at_n_is_a_separate_simulation_at_n(tmp_path):
    jobs = _jobs(tmp_path)
    summaries = simulate_all(jobs, min(2, default_jobs()))
    big = OnePass.read(jobs[0].folder)
    na, eu = (big.curve([f"{name}-{n}" for n in range(1, 81)]) for name in ("mtl", "fra"))
    assert not na.reached_last  # 80 hosts were enough
    assert not eu.reached_last
    assert min(na.deploys, eu.deploys) > 50
    for (hosts_na, hosts_eu), job, summary in zip(SIZES[1:], jobs[1:], summaries[1:], strict=True):
        alone = OnePass.read(job.folder)
        by_region = summary["placement"]["by_region"]
        fleets = ((na, hosts_na, "quebec", "mtl"), (eu, hosts_eu, "germany", "fra"))
        for curve, n, region, name in fleets:
            separate = alone.curve([f"{name}-{k}" for k in range(1, n + 1)])
            # The same deployments, to the one: the cloud's and each host's.
            assert by_region[region]["cloud"] == curve.overflow_by_origin[region][n]
            assert separate.overflow[n] == curve.overflow[n]
            assert separate.placed.tolist() == curve.placed[:n].tolist()
            assert separate.private_s[n] == pytest.approx(curve.private_s[n], rel=1e-12)
            assert separate.cloud_s[n] == pytest.approx(curve.cloud_s[n], rel=1e-3)
        assert summary["requests_total"] == summaries[0]["requests_total"]
        # The checks' figures at N, from the one pass, are the separate simulation's.
        sizing = Sizing({"fleet-na": na, "fleet-eu": eu}, {"fleet-na": 80, "fleet-eu": 80},
                        summaries[0], _basis(jobs[0]))  # fmt: skip
        figures, values = (
            sizing.figures({"fleet-na": hosts_na, "fleet-eu": hosts_eu}),
            metrics(summary),
        )
        for name in ("share_overflow", "share_overflow:quebec", "share_overflow:germany"):
            assert figures[name] == values[name], name
        assert figures["cost_per_day"] == pytest.approx(values["cost_per_day"], abs=0.011)
    manifest = orjson.loads((jobs[1].folder / "manifest.json").read_bytes())
    assert manifest["simulated"]
    assert np.all(np.diff(na.overflow) <= 0)  # more hosts never overflow more


def _basis(job) -> dict:
    return orjson.loads((job.folder / "manifest.json").read_bytes())["costs"]


def test_advise_sizes_two_fleets_from_one_simulation_and_confirms(tmp_path):
    from click.testing import CliRunner

    from edgebench.cli import main

    (tmp_path / "world.toml").write_text(WORLD.format(na=3, eu=3))
    scenario = tmp_path / "s.toml"
    scenario.write_text(SCENARIO.format(world="world.toml"))
    folder = tmp_path / "advice"
    args = ["advise", str(scenario), "--vary", "hosts:fleet-na", "--vary", "hosts:fleet-eu",
            "--check", "share_overflow:quebec < 0.1", "--check", "share_overflow:germany < 0.2",
            "--cold-start", "--jobs", "1", "--results-dir", str(folder)]  # fmt: skip
    done = CliRunner().invoke(main, args)
    assert done.exit_code == 0, done.output
    advice = orjson.loads((folder / "advice.json").read_bytes())
    assert len(advice["probes"]) == 2  # one pass, one confirmation
    answers = advice["answers"]
    na, eu = int(answers["hosts:fleet-na"]), int(answers["hosts:fleet-eu"])
    curves = advice["curves"]
    assert curves["fleet-na"]["chosen"] == na
    assert curves["fleet-na"]["by_region"]["quebec"][na - 1] < 0.1  # index: hosts - 1
    assert curves["fleet-na"]["by_region"]["quebec"][na - 2] >= 0.1  # one fewer fails
    # One host fewer, simulated apart, fails as the one pass said.
    below = tmp_path / "below"
    below.mkdir()
    (below / "world.toml").write_text(WORLD.format(na=na - 1, eu=eu))
    (below / "s.toml").write_text(SCENARIO.format(world="world.toml"))
    job = Job(planned(below / "s.toml", Overrides()), below / "sim", keep_records=False)
    [summary] = simulate_all([job], 1)
    assert metrics(summary)["share_overflow:quebec"] >= 0.1
    assert advice["final"]["share_overflow:quebec"] < 0.1


def test_the_answer_says_which_figures_are_a_windows_and_which_a_days():
    from edgebench.advise.command import answer_text

    final = {"point": {"hosts:fleet-eu": 12.0}, "cost_per_day": 1234.5}
    facts = {"answers": {"hosts:fleet-eu": 12.0}, "probes": [final], "met": True,
             "took_s": 3.0, "final": final, "window_h": 6.0}  # fmt: skip
    text = answer_text(facts)
    assert "every figure is the window's (6 h of the forecast), not the day's" in text
    assert "cost a day: 1,234.50 (the window's cost scaled to 24 h;" in text
    assert "the whole forecast's day" in answer_text(facts | {"window_h": None, "forecast": True})
    assert "the run's cost scaled to 24 h" in answer_text(facts | {"window_h": None})
    capped = answer_text(facts | {"met": False, "stuck": "the probe cap (--max-probes 2) cut"})
    assert "the probe cap (--max-probes 2) cut" in capped


LIMIT_SCENARIO = """
name = "limit-pass"
seed = 5
[target]
application = "my-game"
version = "1.0.0"
[client]
preset = "edgegap-sdk"
max_queue_wait = "8s"
[rate]
mode = "respect"
arrivals = "poisson"
stages = [
    { kind = "hold", duration = "10s", rate = 20 },
    { kind = "hold", duration = "20s", rate = 70 },
    { kind = "hold", duration = "20s", rate = 20 },
]
[[regions]]
name = "europe"
countries = ["DE", "FR"]
"""


def test_every_limits_waits_from_one_simulation(tmp_path):
    from edgebench.advise.limitpass import QueuedDemand

    scenario = tmp_path / "s.toml"
    scenario.write_text(LIMIT_SCENARIO)
    limits = (200, 40, 55, 66)  # the one pass from a limit nobody waits for, then apart
    jobs = [
        Job(planned(scenario, Overrides(limit=value)), tmp_path / str(value), keep_records=True)
        for value in limits
    ]
    summaries = simulate_all(jobs, 2)
    from analysis.load import load_run

    demand = QueuedDemand.of(load_run(jobs[0].folder, lean=True))
    for limit, apart in zip(limits[1:], summaries[1:], strict=True):
        figures, values = demand.figures(limit, 8.0), metrics(apart)
        assert figures["share_abandoned"] == pytest.approx(values["share_abandoned"], abs=0.01)
        for name in ("wait_p50_s", "wait_p95_s", "wait_p99_s"):
            if values[name] is None:  # among the unserved: never
                assert figures[name] is None, (limit, name)
            else:
                assert figures[name] == pytest.approx(values[name], rel=0.05, abs=0.1), (
                    limit,
                    name,
                )


def test_advise_finds_the_limit_from_one_simulation_and_confirms_it_and_one_below(tmp_path):
    from click.testing import CliRunner

    from edgebench.cli import main

    scenario = tmp_path / "s.toml"
    scenario.write_text(LIMIT_SCENARIO)
    folder = tmp_path / "advice"
    args = ["advise", str(scenario), "--check", "wait_p99_s < 4", "--jobs", "2",
            "--results-dir", str(folder)]  # fmt: skip
    done = CliRunner().invoke(main, args)
    assert done.exit_code == 0, done.output
    advice = orjson.loads((folder / "advice.json").read_bytes())
    limit = advice["answers"]["limit"]
    points = {p["point"]["limit"]: p["passed"] for p in advice["probes"]}
    assert len(points) == 3  # the one pass, the answer, one below
    assert points[limit]
    assert not points[limit - 1]
    curve = advice["curves"]["limit"]
    assert curve["chosen"] == limit
    assert not list(folder.glob("probe-*/requests-*"))  # the one pass's records went
    assert (folder / "advice.html").is_file()


def test_advise_answers_the_limit_and_both_fleets_from_one_simulation(tmp_path):
    from click.testing import CliRunner

    from edgebench.cli import main

    (tmp_path / "world.toml").write_text(WORLD.format(na=3, eu=3))
    scenario = tmp_path / "s.toml"
    burst = '{ kind = "hold", duration = "5s", rate = 30 }'
    text = SCENARIO.format(world="world.toml")
    text = text.replace('mode = "exceed"', 'mode = "respect"\nlimit = 40')
    text = text.replace("[rate]", '[client]\npreset = "edgegap-sdk"\n[rate]')
    scenario.write_text(text.replace("rate = 3 }", f"rate = 3 }}, {burst}"))
    folder = tmp_path / "advice"
    args = ["advise", str(scenario), "--vary", "limit", "--vary", "hosts:fleet-na",
            "--vary", "hosts:fleet-eu", "--check", "share_overflow:quebec < 0.1",
            "--check", "wait_p99_s < 9", "--cold-start", "--jobs", "2",
            "--results-dir", str(folder)]  # fmt: skip
    done = CliRunner().invoke(main, args)
    assert done.exit_code == 0, done.output
    advice = orjson.loads((folder / "advice.json").read_bytes())
    assert len(advice["probes"]) == 3, done.output  # one pass; the answer and one below
    assert set(advice["curves"]) == {"limit", "fleet-na", "fleet-eu"}
    answers = advice["answers"]
    below = next(p for p in advice["probes"] if p["point"]["limit"] == answers["limit"] - 1)
    assert not below["passed"]
    assert advice["final"]["passed"]


def test_a_studio_world_of_a_few_lines_is_sized_as_the_whole_world_it_extends(tmp_path):
    # The shipped world, one fleet added, the cloud unlimited; a region with no fleet
    # deploys to the cloud directly.
    from click.testing import CliRunner

    from edgebench.cli import main

    (tmp_path / "studio.toml").write_text(
        '[cloud]\nunlimited = true\n[[private_hosts]]\nid = "fra"\nfleet = "fleet-x"\n'
        'location = "Frankfurt"\ncapacity = 2\ncount = 2\n'
    )
    scenario = tmp_path / "s.toml"
    scenario.write_text(
        SCENARIO.format(world="studio.toml")
        .split("[costs]")[0]
        .replace('private_fleet = "fleet-na"\n', "")
        .replace('private_fleet = "fleet-eu"', 'private_fleet = "fleet-x"')
    )
    folder = tmp_path / "advice"
    args = ["advise", str(scenario), "--vary", "hosts:fleet-x", "--cold-start",
            "--check", "share_overflow:germany < 0.2", "--results-dir", str(folder)]  # fmt: skip
    priced = tmp_path / "priced.toml"  # prices a fleet the world has not: refused before a probe
    priced.write_text(scenario.read_text() + "[costs]\nprivate = { fleet-na = { per_hour = 1 } }\n")
    refused = CliRunner().invoke(main, [*args[:1], str(priced), *args[2:]])
    assert refused.exit_code == 2
    assert "costs.private.fleet-na: no fleet of that name" in refused.output
    assert not list(folder.glob("probe-*"))
    done = CliRunner().invoke(main, args)
    assert done.exit_code == 0, done.output
    advice = orjson.loads((folder / "advice.json").read_bytes())
    assert len(advice["probes"]) == 2
    world = (folder / advice["final"]["folder"] / "world.toml").read_text()
    assert world.count("[[locations]]") == 39  # written whole, the shipped cities in it
    summary = orjson.loads((folder / advice["final"]["folder"] / "summary.json").read_bytes())
    assert summary["placement"]["by_region"]["quebec"]["fleet_deploys"] == 0  # cloud directly


def test_the_first_host_with_room_is_the_linear_hunts_under_any_comings_and_goings():
    import random

    from emulator import DeployRequest, Platform
    from emulator._world import parse_world

    table = {"locations": [{"city": "Paris", "country": "FR", "latitude": 48.85,
                            "longitude": 2.35, "capacity": 10**6}],
             "applications": [{"name": "g", "versions": ["1"]}],
             "private_hosts": [
                 {"id": "h", "location": "Paris", "capacity": 2, "count": 40},
                 {"id": "p", "location": "Paris", "capacity": 2, "status": "PENDING"}],
             "lifecycle": {"lifetime_s": {"distribution": "exponential", "mean": 30}}}  # fmt: skip
    world = parse_world(table)
    platform = Platform(world, seed=3)
    ids = ("p", *(f"h-{n}" for n in range(1, 41)))
    draw, now = random.Random(7), 0.0
    for _ in range(3000):
        now += draw.expovariate(2.0)
        platform.advance(now)
        used = platform.active_by_host()
        hosts = world.private_hosts
        linear = next(
            (i for i in ids if hosts[i].active and used.get(i, 0) < hosts[i].capacity), None
        )
        dep = platform.deploy(DeployRequest("g", "1", None, private_host_ids=ids), now)
        assert (dep.host.id if dep.host else None) == linear


def test_the_one_pass_says_when_its_figures_are_estimates():
    refused = Sizing({}, {}, {"allocation_failure_causes": {"no_capacity": 1234}}, None)
    assert "the cloud refused 1,234 deploys for no room" in (refused.inexact or "")
    assert Sizing({}, {}, {"allocation_failure_causes": {"out_of_range": 3}}, None).inexact is None


def test_a_probe_that_keeps_no_records_writes_none_and_is_summarised_as_one_that_does(tmp_path):
    import pandas as pd

    from analysis.load import load_run
    from edgebench.simulate.command import simulate_one, simulated_run

    (tmp_path / "world.toml").write_text(WORLD.format(na=6, eu=2))
    told = SCENARIO.format(world="world.toml").replace(
        "[rate]", "[requests]\nwebhooks = true\n[rate]"
    )
    (tmp_path / "s.toml").write_text(told)  # fleets, the cloud, costs, webhooks' events
    scenario = planned(tmp_path / "s.toml", Overrides())
    kept, held = (
        Job(scenario, tmp_path / name, keep_records=name == "kept") for name in ("kept", "held")
    )
    summaries = [simulate_one(job) for job in (kept, held)]
    assert summaries[0] == summaries[1]
    assert summaries[0]["placement"]["by_region"]["quebec"]["cloud"] > 0  # hosts ran out
    assert sorted(p.name for p in held.folder.iterdir()) == ["manifest.json", "summary.json"]
    written, in_memory = load_run(kept.folder, lean=True), simulated_run(held)
    for name in ("requests", "events", "emulator", "fleets", "host_cities", "locations"):
        pd.testing.assert_frame_equal(getattr(written, name), getattr(in_memory, name), obj=name)
    assert len(written.events) > 0
