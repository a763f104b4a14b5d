"""`edgebench calibrate` recovers a world it was not told, and answers say what they rest on.

A world whose values differ from the shipped ones (boot median 4.2 s sigma 0.35 where the
image is not cached, 2.0 s where it is, an API answering in about 30 ms) runs about 400
deployments with webhooks (simulated: the same model and records as a run against the
emulator; `make bench-calibrate` does it live); calibrate must recover each median within
6% and each sigma within 15%, and the same run on the calibrated world must show the time
to ready's p50 and p95 within 5%. Exceed runs on each limiter shape must be told apart.
"""

import orjson
import pytest
from click.testing import CliRunner

from edgebench.cli import main
from emulator import EmulatorConfig, load_world
from emulator._model import ApiModel

KNOWN_WORLD = """
[placement]
max_distance_km = 3000
[lifecycle]
boot_s = { distribution = "lognormal", median = 4.2, sigma = 0.35 }
cached_boot_s = { distribution = "lognormal", median = 2.0, sigma = 0.25 }
lifetime_s = { distribution = "fixed", value = 60 }
[limits]
algorithm = "ALGORITHM"
[api]
latency_ms = { distribution = "lognormal", median = 30, sigma = 0.2 }
[[applications]]
name = "my-game"
versions = ["1.0.0"]
[[locations]]
city = "Frankfurt"
country = "DE"
latitude = 50.1109
longitude = 8.6821
capacity = 1000
cached = true
[[locations]]
city = "Madrid"
country = "ES"
latitude = 40.4168
longitude = -3.7038
capacity = 1000
"""
SCENARIO = """
name = "known-world"
seed = 2
[target]
application = "my-game"
version = "1.0.0"
world = "WORLD"
[requests]
webhooks = true
[rate]
mode = "MODE"
arrivals = "poisson"
stages = [{ kind = "hold", duration = "SECONDSs", rate = RATE }]
[[regions]]
name = "germany"
cities = [{ name = "Frankfurt", country = "DE", latitude = 50.11, longitude = 8.68 }]
ip_share = 0.0
[[regions]]
name = "spain"
cities = [{ name = "Madrid", country = "ES", latitude = 40.42, longitude = -3.70 }]
ip_share = 0.0
"""


def files(tmp_path, name="known", algorithm="sliding-window", mode="respect", seconds=40,
          rate=10, world=None):  # fmt: skip
    if world is None:
        world = f"{name}-world.toml"
        (tmp_path / world).write_text(KNOWN_WORLD.replace("ALGORITHM", algorithm))
    text = SCENARIO.replace("WORLD", str(world)).replace("MODE", mode)
    path = tmp_path / f"{name}.toml"
    path.write_text(text.replace("SECONDS", str(seconds)).replace("RATE", str(rate)))
    return path


def simulated(scenario, folder, *options) -> dict:
    args = ["simulate", str(scenario), "--no-plots", "--results-dir", str(folder), *options]
    done = CliRunner().invoke(main, args)
    assert done.exit_code in (0, 1), done.output
    return orjson.loads((folder / "summary.json").read_bytes())


def calibrate(*args):
    return CliRunner().invoke(main, ["calibrate", *map(str, args)])


def test_calibrate_recovers_the_world_and_the_calibrated_world_reproduces_the_run(tmp_path):
    run = simulated(files(tmp_path), tmp_path / "run")
    out = tmp_path / "fitted" / "world.toml"
    done = calibrate(tmp_path / "run", "--out", out)
    assert done.exit_code == 0, done.output
    report = orjson.loads((out.parent / "calibration.json").read_bytes())
    fits = report["fits"]
    assert sum(fit["n"] for name, fit in fits.items() if name != "latency_ms") >= 400
    for name, median, sigma in (("boot_s", 4.2, 0.35), ("cached_boot_s", 2.0, 0.25),
                                ("latency_ms", 30.0, 0.2)):  # fmt: skip
        assert fits[name]["median"] == pytest.approx(median, rel=0.06), name
        assert fits[name]["sigma"] == pytest.approx(sigma, rel=0.15), name
        assert fits[name]["verdict"] == "fits"
        low, high = fits[name]["interval_90"]["median"]
        assert low < fits[name]["median"] < high
    assert "boot_s: median 4." in done.output
    assert "samples" in done.output
    world = load_world(out)
    assert world.lifecycle.boot_s.a == pytest.approx(fits["boot_s"]["median"], rel=1e-3)
    assert "calibrated from run on" in world.provenance["lifecycle.boot_s"]
    assert world.intervals["lifecycle.boot_s"][0] < 4.2 * 1.06
    assert "# calibrated from run" in out.read_text()  # a comment above each fitted value
    assert (out.parent / "calibration.html").read_text().count("<tr>") >= 4
    # The same run (its seed: the same arrivals and draws) on the calibrated world.
    again = simulated(files(tmp_path, "again", world=out), tmp_path / "again")
    for p in ("p50", "p95"):
        expected = run["time_to_ready_s"][p]
        assert again["time_to_ready_s"][p] == pytest.approx(expected, rel=0.05), p


def test_twenty_deployments_give_wide_intervals_and_say_so(tmp_path):
    simulated(files(tmp_path, seconds=2), tmp_path / "small")
    out = tmp_path / "fitted" / "world.toml"
    done = calibrate(tmp_path / "small", "--out", out)
    assert done.exit_code == 0, done.output
    fits = orjson.loads((out.parent / "calibration.json").read_bytes())["fits"]
    for name in ("boot_s", "cached_boot_s"):
        fit = fits[name]
        assert fit["n"] < 20
        assert fit["verdict"] == "too few samples"
        low, high = fit["interval_90"]["median"]
        assert (high - low) / fit["median"] > 0.1  # far wider than 400 samples' few percent
        assert f"{fit['n']} samples, KS" in done.output


@pytest.mark.parametrize("algorithm", ["sliding-window", "fixed-window", "token-bucket"])
def test_an_exceed_runs_429s_tell_the_limiters_shape(tmp_path, algorithm):
    simulated(files(tmp_path, seconds=5), tmp_path / "ready")
    exceed = files(tmp_path, "exceed", algorithm, mode="exceed", seconds=6, rate=80)
    simulated(exceed, tmp_path / "exceed")
    out = tmp_path / "fitted" / "world.toml"
    done = calibrate(tmp_path / "ready", tmp_path / "exceed", "--out", out)
    assert done.exit_code == 0, done.output
    limiter = orjson.loads((out.parent / "calibration.json").read_bytes())["limiter"]
    assert limiter["shape"] == algorithm, limiter
    assert limiter["evidence"]["most_admitted_in_any_second"] > 0
    assert load_world(out).limiter.algorithm == algorithm


def test_folders_that_are_not_runs_or_hold_no_readiness_are_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    done = calibrate(tmp_path / "empty")
    assert done.exit_code == 2
    assert "not a run folder" in done.output
    scenario = files(tmp_path, seconds=2)
    scenario.write_text(scenario.read_text().replace("webhooks = true", "webhooks = false"))
    simulated(scenario, tmp_path / "blind")
    done = calibrate(tmp_path / "blind", "--out", tmp_path / "w.toml")
    assert done.exit_code == 2
    assert "no readiness data" in done.output
    assert "webhooks = true or poll_status" in done.output


def test_the_answers_say_how_much_they_depend_on_the_assumptions(tmp_path):
    simulated(files(tmp_path, seconds=5), tmp_path / "run")
    out = tmp_path / "fitted" / "world.toml"
    assert calibrate(tmp_path / "run", "--out", out).exit_code == 0
    scenario = files(tmp_path, "again", world=out, seconds=8)
    summary = simulated(scenario, tmp_path / "sens", "--sensitivity")
    figures = summary["sensitivity"]["figures"]
    assumptions = summary["sensitivity"]["assumptions"]
    assert "limits.algorithm = token-bucket" in assumptions
    assert any("interval's low" in name for name in assumptions)  # calibrated: its interval
    assert "lifecycle.lifetime_s -25%" in assumptions  # never calibrated: +-25%
    wait = figures["wait_p99_s"]
    assert wait["low"] <= wait["value"] <= wait["high"]
    assert wait["most"] in assumptions
    page = (tmp_path / "sens" / "report.html").read_text()
    assert "Over the assumptions" in page
    assert "What the world assumed" in page
    assert "calibrated from run on" in page
    assert not list((tmp_path / "sens" / "sensitivity").glob("*/requests-*"))


def test_the_emulator_answers_with_the_worlds_latency_and_limiter(tmp_path):
    path = tmp_path / "w.toml"
    path.write_text(KNOWN_WORLD.replace("ALGORITHM", "token-bucket"))
    world = load_world(path)
    model = ApiModel(EmulatorConfig(world=world), clock=lambda: 0.0)
    delays = [model.fault()[0] for _ in range(400)]
    assert sorted(delays)[200] == pytest.approx(0.030, rel=0.06)
    assert type(model.limiter._limiters["deploy"]).__name__ == "TokenBucketLimiter"
    assert [row["key"] for row in world.assumptions()][:2] == [
        "lifecycle.boot_s",
        "lifecycle.cached_boot_s",
    ]
