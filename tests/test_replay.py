"""Replaying a match log: a logged match is one arrival with its own players; bad lines named."""

import subprocess
import sys
import textwrap
from pathlib import Path

import orjson
import pytest

from edgebench._errors import ScenarioError
from edgebench.plan.payloads import FLEET_DEPLOY, preview
from edgebench.plan.scenario import load_scenario
from edgebench.plan.schedule import Schedule

# Started processes and servers, timed: one after another, in the first group of live
# tests (the second runs on the other worker: Makefile).
pytestmark = pytest.mark.xdist_group("live")

SCENARIO = """
name = "replayed"
[target]
application = "my-game"
version = "1.0.0"
[mix]
private_host_ids = ["fleet-mtl-1"]
[rate]
mode = "{mode}"
arrivals = "replay"
replay_file = "{log}"
speed = 2.0
"""


def replayed(tmp_path, log: str, name: str = "log.jsonl", mode: str = "exceed"):
    (tmp_path / name).write_text(textwrap.dedent(log).lstrip())
    path = tmp_path / "replayed.toml"
    path.write_text(SCENARIO.format(mode=mode, log=name))
    return load_scenario(path)


LOG = """
{"t": 0, "players": ["200.147.67.142", [45.5, -73.6]], "region": "na"}
{"t": 1.0, "players": ["81.2.69.142"], "region": "eu", "fleet": true}
{"t": "4s", "players": ["35.6,139.6", "35.7,139.7"]}
"""


def test_each_logged_match_is_an_arrival_with_its_own_players(tmp_path):
    scenario = replayed(tmp_path, LOG)
    assert [a.due_s for a in Schedule.from_scenario(scenario).arrivals()] == [0.0, 0.5, 2.0]
    requests = [request for _, request in preview(scenario, 3)]
    first = requests[0].body["users"]
    assert first == [
        {"user_type": "ip_address", "user_data": {"ip_address": "200.147.67.142"}},
        {"user_type": "geo_coordinates", "user_data": {"latitude": 45.5, "longitude": -73.6}},
    ]
    assert [r.region for r in requests] == ["na", "eu", "replay"]
    assert requests[1].endpoint == FLEET_DEPLOY
    assert requests[1].body["private_host_ids"] == ["fleet-mtl-1"]
    assert requests[2].players == 2


def test_the_logs_fleet_share_decides_the_users_and_needs_host_ids(tmp_path):
    scenario = replayed(tmp_path, LOG)
    assert scenario.endpoint_shares == pytest.approx((2 / 3, 1 / 3))
    (tmp_path / "nohosts.toml").write_text(
        (tmp_path / "replayed.toml").read_text().replace('["fleet-mtl-1"]', "[]")
    )
    with pytest.raises(ScenarioError, match=r"mix\.private_host_ids: .* has fleet deploys"):
        load_scenario(tmp_path / "nohosts.toml")


def test_a_csv_log_and_iso_times(tmp_path):
    log = """
    t,players,region,fleet
    2026-12-01T20:00:00Z,"200.147.67.142;45.5,-73.6",na,false
    2026-12-01T20:00:03Z,81.2.69.142,eu,true
    """
    scenario = replayed(tmp_path, log, "log.csv")
    assert [a.due_s for a in Schedule.from_scenario(scenario).arrivals()] == [0.0, 1.5]
    assert [r.endpoint for _, r in preview(scenario, 2)][1] == FLEET_DEPLOY


@pytest.mark.parametrize("workers", [2, 3])
def test_a_replay_splits_exactly_across_workers_in_respect_mode(tmp_path, workers):
    lines = [orjson.dumps({"t": k / 19, "players": ["81.2.69.142"]}).decode() for k in range(400)]
    schedule = Schedule.from_scenario(replayed(tmp_path, "\n".join(lines), mode="respect"))
    whole = [(a.index, a.due_s) for a in schedule.arrivals()]
    parts = [(a.index, a.due_s) for i in range(workers) for a in schedule.arrivals(i, workers)]
    assert sorted(parts) == whole
    assert len(whole) == 400  # 38/s at twice real time: 76/s asked, held to 40 in any second


@pytest.mark.parametrize(
    ("log", "says"),
    [
        ('{"t": 0, "players": ["1.2.3.4"]}\n{"t": 1, "players": ["x"]}', "line 2: players[0]: 'x'"),
        ('{"t": 0, "players": [[95, 0]]}', "line 1: players[0]: [95, 0] is off the globe"),
        ('{"t": "soon", "players": ["1.2.3.4"]}', "line 1: t: 'soon' is not a time"),
        ('{"t": 5, "players": ["1.2.3.4"]}\n{"t": 1, "players": ["1.2.3.4"]}', "line 2: t: before"),
        ('{"t": 0, "players": []}', "line 1: players: give 1 to 100 players"),
        ('{"t": 0, "players": ["1.2.3.4"]}\n{"t": 1', "line 2: not JSON"),
    ],
)
def test_a_bad_line_names_the_file_the_line_and_the_field(tmp_path, log, says):
    with pytest.raises(ScenarioError, match=f"log.jsonl: {says}".replace("[", "\\[")):
        replayed(tmp_path, log)


def test_the_shipped_example_log_is_the_one_its_script_makes(tmp_path):
    folder = Path(__file__).resolve().parent.parent / "scenarios" / "replays"
    out = tmp_path / "example.jsonl"
    done = subprocess.run(
        [sys.executable, str(folder / "make_example.py"), str(out)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == (folder / "example.jsonl").read_bytes()
    scenario = load_scenario("scenarios/replay.toml")
    assert len(scenario.replay) == len(out.read_bytes().splitlines())


def test_the_inputs_digest_covers_the_replayed_log_too(tmp_path):
    first = replayed(tmp_path, LOG)
    changed = replayed(tmp_path, LOG.replace('"t": 1.0', '"t": 1.5'))
    assert first.digest == changed.digest  # the scenario file itself is the same
    assert first.inputs_digest != changed.inputs_digest
