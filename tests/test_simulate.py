"""`edgebench simulate`: the schedule, the client and the emulator's model in virtual time.

The engine runs in-process with an in-memory sink; the command end to end with click's
CliRunner (no HTTP, no Locust: that is the point). The live-versus-simulated agreement
over two minutes is bench/agreement.py.
"""

import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from edgebench.cli import main
from edgebench.plan.overrides import OVERRIDDEN, override_words
from edgebench.plan.scenario import load_scenario, with_duration
from edgebench.plan.schedule import Schedule
from edgebench.records import REQUEST_FIELDS, REQUEST_NAMES, read_columnar, read_records
from edgebench.simulate.command import SimulatePlan, latency_distribution, simulate_into
from edgebench.simulate.engine import Simulation, Sink, VirtualGuard
from emulator import ApiModel, EmulatorConfig, load_world
from emulator._app import Emulator

SMALL_WORLD = Path("scenarios/worlds/small.toml").resolve()


def write_scenario(folder: Path, rate: str, target: str = "", extra: str = "") -> Path:
    path = folder / "sim.toml"
    path.write_text(
        f"""name = "sim"
seed = 3
[target]
application = "my-game"
version = "1.0.0"
{target}
[rate]
{rate}
{extra}
[[regions]]
name = "europe"
countries = ["DE", "FR"]
"""
    )
    return path


class Memory(Sink):
    def __init__(self) -> None:
        self.requests, self.events, self.readings = [], [], []

    def request(self, row: tuple) -> None:
        record = dict(zip(REQUEST_NAMES, row, strict=True))
        self.requests.append(record)

    def event(self, record: dict) -> None:
        self.events.append(record)

    def reading(self, record: dict) -> None:
        self.readings.append(record)


def simulated(scenario, time_scale: float = 1.0, **config) -> tuple[Simulation, Memory]:
    world = load_world(scenario.world_file)
    model = EmulatorConfig(world=world, seed=scenario.seed, time_scale=time_scale, **config)
    sink = Memory()
    simulation = Simulation(scenario, model, sink, epoch=1_800_000_000.0)
    simulation.run()
    return simulation, sink


def most_in_any_window(times: list[float], window: float = 1.0) -> int:
    times, most, first = sorted(times), 0, 0
    for last, t in enumerate(times):
        while t - times[first] >= window:
            first += 1
        most = max(most, last - first + 1)
    return most


def matches_add_up(records: list[dict]) -> Counter:
    finals = Counter(r["final"] for r in records if r["final"])
    assert sum(finals.values()) == len({r["match"] for r in records})  # one fate a match
    return finals


def test_the_emulator_and_the_simulator_share_one_model():
    emulator = Emulator(EmulatorConfig())
    assert type(emulator.model) is ApiModel
    assert emulator.platform is emulator.model.platform
    simulation = Simulation(
        load_scenario(Path("scenarios/smoke.toml")), EmulatorConfig(), Memory(), 0.0
    )
    assert type(simulation.model) is ApiModel


def test_the_guard_holds_quota_answers_a_window_first_in_first_out():
    guard = VirtualGuard(quota=2, window_s=1.0)
    sends = []
    for entered in (0.0, 0.0, 0.0, 0.1):
        send = guard.admit(entered, deadline=None)
        guard.took(send, send + 0.01)
        sends.append(send)
    assert sends == [0.0, 0.0, 1.01, 1.01]  # the third waits for the first answer's window
    assert guard.admit(0.2, deadline=1.5) is None  # it would go at 2.01: past its deadline


def test_respect_mode_at_the_limit_meets_the_strict_limiter_without_a_429():
    scenario = load_scenario(Path("scenarios/respect-limit.toml"))
    _, sink = simulated(with_duration(scenario, "20s"))
    sent = [r for r in sink.requests if r["t_send"]]
    assert len(sent) > 700
    assert not any(r["status"] == 429 for r in sent)  # counted by the emulator's own limiter
    assert most_in_any_window([r["t_send"] for r in sent]) <= 40


def test_exceed_mode_meets_the_limiter_as_the_emulator_would():
    scenario = load_scenario(Path("scenarios/retry-storm.toml"))
    simulation, sink = simulated(with_duration(scenario, "10s"))
    statuses = Counter(r["status"] for r in sink.requests)
    firsts = [r for r in sink.requests if r["attempt"] == 1]
    assert len(firsts) == simulation.matches == simulation.schedule.count()
    assert statuses[429] > 0
    assert statuses[202] > 0
    accepted = [r["t_send"] for r in sink.requests if r["status"] == 202]
    assert most_in_any_window(accepted) <= 40
    # The SDK's retries follow Retry-After (1 s here) plus up to 0.1 s of jitter.
    by_match = {}
    for record in sink.requests:
        by_match.setdefault(record["match"], []).append(record)
    retried = [attempts for attempts in by_match.values() if len(attempts) > 1]
    for first, second in (attempts[:2] for attempts in retried):
        answered = first["t_send"] + first["latency_ms"] / 1000
        assert 1.0 <= second["t_send"] - answered <= 1.1 + 1e-6
    assert max(len(attempts) for attempts in by_match.values()) == 3
    finals = matches_add_up(sink.requests)
    assert finals["served"] + finals["failed"] == simulation.matches


def test_a_full_world_refuses_with_422_and_its_cause(tmp_path):
    path = write_scenario(
        tmp_path,
        rate='mode = "exceed"\nstages = [{ kind = "hold", duration = "20s", rate = 20 }]',
        target=f'world = "{SMALL_WORLD}"',
    )
    simulation, sink = simulated(load_scenario(path))
    causes = Counter(r["cause"] for r in sink.requests if r["status"] == 422)
    accepted = sum(r["status"] == 202 for r in sink.requests)
    assert accepted == 120  # the small world's slots; its matches outlast the run
    assert causes == {"no_capacity": simulation.matches - 120}
    assert sink.readings[-1]["holding_capacity"] == 120


def test_abandoned_matches_leave_the_queue_at_their_deadline(tmp_path):
    path = write_scenario(
        tmp_path,
        rate='mode = "respect"\narrivals = "tick"\ntick = "5s"\n'
        'stages = [{ kind = "hold", duration = "10s", rate = 30 }]',
        extra='[client]\npreset = "edgegap-sdk"\nmax_queue_wait = "2s"\n',
    )
    simulation, sink = simulated(load_scenario(path))
    abandoned = [r for r in sink.requests if r["outcome"] == "abandoned"]
    assert abandoned
    assert all(r["final"] == "abandoned" for r in abandoned)
    assert all(abs(r["queue_ms"] - 2000) < 1 for r in abandoned)
    finals = matches_add_up(sink.requests)
    assert finals["served"] + finals["abandoned"] == simulation.matches > 100


def test_webhooks_tell_readiness_after_the_boot_and_a_simulation_repeats_itself():
    scenario = with_duration(load_scenario(Path("scenarios/smoke.toml")), "10s")
    _, first = simulated(scenario)
    _, again = simulated(scenario)
    assert first.requests == again.requests
    assert first.events == again.events
    sent = {r["request_id"]: r["t_send"] for r in first.requests}
    waits = [e["t_received"] - sent[e["request_id"]] for e in first.events]
    assert len(waits) == len(sent)
    assert min(waits) > 0.5
    assert max(waits) < 10


def test_records_have_every_field_of_the_contract():
    _, sink = simulated(with_duration(load_scenario(Path("scenarios/smoke.toml")), "5s"))
    assert [list(r) for r in sink.requests[:1]] == [[f.name for f in REQUEST_FIELDS]]


def test_simulate_writes_a_run_folder_the_analysis_reads(tmp_path):
    results = tmp_path / "sim"
    done = CliRunner().invoke(
        main,
        ["simulate", "scenarios/smoke.toml", "--duration", "20s", "--results-dir", str(results)],
    )
    assert done.exit_code == 0, done.output
    assert "(simulated)" in done.output
    assert "PASS: all 4 thresholds met" in done.output
    manifest = orjson.loads((results / "manifest.json").read_bytes())
    assert manifest["simulated"] is True
    assert manifest["emulator"]["latency_ms"] == {
        "distribution": "lognormal",
        "median": 1.6,
        "sigma": 0.25,
    }
    assert manifest["emulator"]["world"]["source"].endswith("default-world.toml")
    summary = orjson.loads((results / "summary.json").read_bytes())
    assert summary["requests_total"] == manifest["scenario"]["expected_requests"]
    assert summary["time_to_ready_s"]["p50"] > 0
    assert "(simulated, not sent" in (results / "report.html").read_text()
    assert read_records(results / "emulator-metrics.jsonl")[0][-1]["deployments_created"] > 0
    assert list(results.glob("*.png"))
    # Every override the class has, set: each reaches the simulation and its manifest.
    quick, world, prices = tmp_path / "quick", tmp_path / "world.toml", tmp_path / "prices.toml"
    world.write_text('extends = "shipped"\n')
    prices.write_text("[costs]\ncloud_vcpu_hour = 0.1\n")
    overrides = {
        "duration": "2s", "world": str(world), "seed": 9, "rate_mode": "exceed",
        "rate_factor": "2", "limit": 7, "costs": str(prices),
    }  # fmt: skip
    assert set(overrides) == set(OVERRIDDEN)
    args = ["simulate", "scenarios/smoke.toml", *override_words(overrides), "--no-plots"]
    done = CliRunner().invoke(main, [*args, "--results-dir", str(quick)])
    assert done.exit_code in (0, 1), done.output
    assert (quick / "summary.json").exists()
    assert not list(quick.glob("*.png"))  # the numbers and the verdict only
    manifest = orjson.loads((quick / "manifest.json").read_bytes())
    assert manifest["run_spec"]["overrides"] == overrides
    facts = manifest["scenario"]
    assert (facts["seed"], facts["mode"], facts["limit"], facts["duration_s"]) == (
        9,
        "exceed",
        7,
        2,
    )
    assert manifest["emulator"]["world"]["source"] == str(world)
    assert manifest["emulator"]["rate_limits"]["deploy"] == 7
    assert manifest["costs"]["cloud_vcpu_hour"] == 0.1


def test_ctrl_c_keeps_what_was_simulated(tmp_path, monkeypatch):
    original = Simulation._sample

    def interrupted(self):
        if self.now - self.epoch >= 8:
            raise KeyboardInterrupt
        original(self)

    monkeypatch.setattr(Simulation, "_sample", interrupted)
    scenario = load_scenario(Path("scenarios/smoke.toml"))
    results = simulate_into(
        scenario, SimulatePlan(Path("x"), results_dir=tmp_path / "cut"), echo=False
    )
    manifest = orjson.loads((results / "manifest.json").read_bytes())
    assert manifest["interrupted_at_s"] == 8.0
    assert manifest["schedule_completed"] is False  # its verdict: INCOMPLETE
    kept = read_records(next(results.glob("requests-*.arrow")))[0]  # simulate's default
    assert kept
    assert max(r["t_sched"] for r in kept) - manifest["epoch"] <= 8


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--latency-ms", "{ distribution = 'gamma' }"], "--latency-ms"),
        (["--latency-ms", "fast"], "--latency-ms: 'fast' is not a number or a TOML table"),
        (["--duration", "soon"], "--duration 'soon': not a duration"),
    ],
)
def test_bad_simulate_options_are_one_line_and_exit_2(tmp_path, args, says):
    done = CliRunner().invoke(main, ["simulate", "scenarios/smoke.toml", *args])
    assert done.exit_code == 2
    assert says in done.output
    assert "Traceback" not in done.output


def test_a_fixed_latency_is_a_number():
    assert latency_distribution("2.5").describe() == {"distribution": "fixed", "value": 2.5}


def test_demand_above_the_limit_waits_in_the_clients_queue_and_none_of_it_vanishes(tmp_path):
    rate = 'mode = "respect"\nstages = [{ kind = "hold", duration = "10s", rate = 120 }]'
    queued = write_scenario(
        tmp_path, rate=rate, extra='[client]\npreset = "edgegap-sdk"\nmax_queue_wait = "3s"\n'
    )
    simulation, sink = simulated(load_scenario(queued))
    assert simulation.matches == 1200  # every match the demand forms: three times the limit
    sent = [r["t_send"] for r in sink.requests if r["t_send"]]
    assert most_in_any_window(sent) <= 40  # the queue holds the rest, never the API
    finals = matches_add_up(sink.requests)
    assert finals["abandoned"] > 600  # past the 3 s the players waited
    assert finals["served"] + finals["abandoned"] == 1200
    assert max(r["queue_ms"] for r in sink.requests if r["queue_ms"] is not None) <= 3000.001
    (tmp_path / "capped").mkdir()
    capped = write_scenario(tmp_path / "capped", rate=rate)  # no [client]: the schedule caps
    assert Schedule.from_scenario(load_scenario(capped)).count() < 410


def test_arrow_records_hold_what_the_json_lines_hold_in_a_fraction_of_the_bytes(tmp_path):
    folders = {}
    for kind in ("jsonl", "arrow"):
        folders[kind] = tmp_path / kind
        args = ["simulate", "scenarios/smoke.toml", "--no-plots", "--records", kind]
        done = CliRunner().invoke(main, [*args, "--results-dir", str(folders[kind])])
        assert done.exit_code == 0, done.output

    def relative(folder, pattern, near=False):
        """relative are a folder's records with times from its epoch (each run has its own;
        near: compared to the millisecond, as two epochs round differently)."""
        epoch = orjson.loads((folder / "manifest.json").read_bytes())["epoch"]
        records = read_records(next(folder.glob(pattern)))[0]
        for record in records:
            for key in ("t_sched", "t_send", "t_received"):
                if record.get(key) is not None:
                    since = record[key] - epoch
                    record[key] = pytest.approx(since, abs=1e-3) if near else since
        return records

    columns = relative(folders["arrow"], "requests-*.arrow", near=True)
    assert relative(folders["jsonl"], "requests-*.jsonl") == columns  # field by field
    assert len(columns) > 50
    events = relative(folders["arrow"], "events-*.arrow", near=True)
    assert relative(folders["jsonl"], "events-*.jsonl") == events
    summaries = [orjson.loads((f / "summary.json").read_bytes()) for f in folders.values()]
    assert summaries[0]["outcome_counts"] == summaries[1]["outcome_counts"]
    assert summaries[0]["time_to_ready_s"] == summaries[1]["time_to_ready_s"]
    assert orjson.loads((folders["arrow"] / "manifest.json").read_bytes())["records"] == "arrow"
    sizes = {k: sum(p.stat().st_size for p in f.glob("requests-*")) for k, f in folders.items()}
    assert sizes["arrow"] * 5 < sizes["jsonl"]


@pytest.mark.parametrize("columnar", [False, True])
def test_the_simulators_records_reach_the_disk_at_least_once_a_second(
    tmp_path, monkeypatch, columnar
):
    import edgebench.simulate.command as command

    now = [100.0]
    monkeypatch.setattr(command.time, "monotonic", lambda: now[0])
    sink = command.FileSink(tmp_path, "r1", columnar=columnar)
    record = {field.name: None for field in REQUEST_FIELDS} | {
        "index": 0, "t_sched": 1.0, "endpoint": "POST /v2/deployments", "worker": "sim",
        "stage": 0, "offered_rate": 1.0, "outcome": "accepted", "match": 0, "attempt": 1,
    }  # fmt: skip
    row = tuple(record[name] for name in REQUEST_NAMES)
    for _ in range(command.CHECK_EVERY):
        sink.request(row)
    written = next(tmp_path.glob("requests-*"), None)
    assert written is None or written.stat().st_size == 0  # within the second: held
    now[0] += 1.0
    for _ in range(command.CHECK_EVERY):
        sink.request(row)
    written = next(tmp_path.glob("requests-*"))
    assert len(read_records(written)[0]) == 2 * command.CHECK_EVERY  # a second on: written
    sink.close()


@pytest.mark.xdist_group("live2")  # a process, timed: with the second group of live tests
def test_a_simulation_killed_at_a_random_moment_loses_at_most_its_last_second(tmp_path):

    results = tmp_path / "day"
    command = [
        sys.executable,
        "-m",
        "edgebench.cli",
        "simulate",
        "scenarios/launch-forecast-day.toml",
    ]
    process = subprocess.Popen(
        [*command, "--results-dir", str(results), "--no-plots"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not list(results.glob("requests-*.arrow")) and time.monotonic() < deadline:
            time.sleep(0.05)
        (requests,) = results.glob("requests-*.arrow")
        # Every time the file grew, until a random moment: written at least once a second.
        grew, size = [time.monotonic()], requests.stat().st_size
        kill_at = grew[0] + random.uniform(1.2, 3.0)
        while time.monotonic() < kill_at:
            if (now := requests.stat().st_size) != size:
                grew.append(time.monotonic())
                size = now
            time.sleep(0.02)
        process.kill()
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
    # A second, and the slack of looking: the sink reads the clock every 1,024 records, this
    # test every 20 ms, both slower when the other tests take the cores.
    assert max(b - a for a, b in zip(grew, [*grew[1:], kill_at], strict=True)) < 1.5
    # What was written before the kill reads: every whole batch, a torn last one left out.
    table, torn = read_columnar(requests)
    assert table.num_rows > 0
    assert torn in (0, 1)


def test_checks_given_inline_judge_the_run_with_a_thresholds_files(tmp_path):
    folder = tmp_path / "run"
    args = ["simulate", "scenarios/smoke.toml", "--duration", "5s", "--no-plots"]
    done = CliRunner().invoke(
        main, [*args, "--results-dir", str(folder), "--check", "share_429 == 0",
               "--check", "p95_ms < 0.001"],
    )  # fmt: skip
    assert done.exit_code == 1, done.output
    assert "FAIL: 1 of 2 thresholds" in done.output
    assert "p95_ms < 0.001: " in done.output
    checks = tmp_path / "checks.toml"
    checks.write_text('checks = ["share_error == 0"]\n')
    again = CliRunner().invoke(
        main, ["analyze", str(folder), "--no-plots", "--thresholds", str(checks),
               "--check", "share_429 == 0"],
    )  # fmt: skip
    assert again.exit_code == 0, again.output
    assert "PASS: all 2 thresholds met" in again.output  # the file's and the inline one
    bad = CliRunner().invoke(main, [*args, "--check", "nonsense"])
    assert bad.exit_code == 2
    assert bad.stderr.startswith("Error: 'nonsense' is not a check")
