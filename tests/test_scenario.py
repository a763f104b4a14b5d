"""Scenario files: the shipped ones are valid, malformed ones fail with one line per problem."""

from pathlib import Path

import pytest

from edgebench._errors import ScenarioError
from edgebench.plan.scenario import load_scenario, parse_duration

from .conftest import edgebench

SCENARIOS = sorted(Path("scenarios").glob("*.toml"))
VALID = """
[target]
application = "my-game"
version = "1.0.0"
[rate]
stages = [{ kind = "hold", duration = "10s", rate = 5 }]
[[regions]]
name = "r"
countries = ["BR"]
"""


def test_the_shipped_scenarios_are_all_valid():
    names = {load_scenario(path).name for path in SCENARIOS}
    assert names >= {
        "smoke",
        "launch-day",
        "fleet-overflow",
        "respect-limit",
        "exceed-limit",
        "capacity-step",
    }


def test_durations_read_numbers_and_units():
    assert parse_duration("1h30m") == 5400
    assert parse_duration("2m") == 120
    assert parse_duration(" 1.5s ") == 1.5
    for bad in ("", "soon", "3d", True):
        with pytest.raises(ValueError, match="duration"):
            parse_duration(bad)


BAD = [
    ("name = 'a b'", "name: string should match pattern"),
    ("seed = 'x'", "seed: input should be a valid integer"),
    ("colour = 'red'", "colour: extra inputs are not permitted"),
    ("[target]\napplication = 3", "target.application: input should be a valid string"),
    ("[mix]\nfleet_deploy = 1", "mix.fleet_deploy needs private_host_ids"),
    ("[mix]\ndeploy = 0", "mix: deploy + fleet_deploy is 0"),
    ("[mix]\nfleet_deploy = 1\nprivate_host_ids = ['a', 'a']", "private_host_ids repeats"),
    ("[players]\nsizes = [1, 2]\nweights = [1]", "weights and sizes differ"),
    ("[players]\nsizes = [0]", "players.sizes[0]: input should be greater than or equal to 1"),
    ("[players]\nsizes = [1]\nweights = [0]", "weights sum to 0"),
    ("[requests]\nrequire_cached_share = 2", "require_cached_share: input should be less than"),
    ("[requests]\nwebhooks = 'yes'", "requests.webhooks: input should be a valid boolean"),
    ("[requests]\nwebhook_public_url = 'hooks.example.com'", "is not an http(s) url"),
    ("[requests]\nwebhook_port = 70000", "webhook_port: input should be less than or equal"),
    ("thresholds = ['p95 < 3']", "thresholds: 'p95 < 3': unknown metric 'p95'; one of"),
    ("thresholds = ['p95_ms is fine']", "is not a check; write metric op value"),
    ("[rate]\nmode = 'gentle'", "rate.mode: input should be 'respect' or 'exceed'"),
    ("[rate]\nlimit = 0", "rate.limit: input should be greater than or equal to 1"),
    ("[rate]\nfactor = -1", "rate.factor: input should be greater than 0"),
    ("[rate]\nstages = []", "give one of [rate] stages, a [demand] forecast, or arrivals"),
    (
        "[rate]\nstages = [{kind = 'hold', duration = '0s', rate = 1}]",
        "duration: input should be greater than 0",
    ),
    ("[rate]\nstages = [{kind = 'hold', duration = 'soon', rate = 1}]", "must be a duration"),
    ("[rate]\nstages = [{kind = 'hold', duration = 5, rate = -2}]", "rate.stages[0].rate"),
    ("[rate]\nstages = [{kind = 'wave', duration = 5, rate = 2}]", "rate.stages[0].kind"),
    ("[rate]\nstages = [{kind = 'hold', duration = 5, rate = 0}]", "every stage has rate 0"),
    ("[rate]\nstages = [{kind = 'hold', rate = 2}]", "rate.stages[0].duration: field required"),
    ("[[regions]]\nname = 'x'\ncountries = ['XX']", "unknown country code 'XX'"),
    ("[[regions]]\nname = 'x'", "a region needs countries or cities"),
    ("[[regions]]\nname = 'x'\ncountries = ['BR']\nweight = 0", "region weights sum to 0"),
    (
        "[[regions]]\nname = 'x'\n"
        "cities = [{name = 'c', country = 'BR', latitude = 91, longitude = 0}]",
        "latitude: input should be less than or equal to 90",
    ),
    (
        "[[regions]]\nname = 'x'\ncountries = ['BR']\nip_share = 1.5",
        "ip_share: input should be less than or equal to 1",
    ),
    (
        "[[regions]]\nname = 'x'\ncountries = ['BR']\njitter_km = -1",
        "jitter_km: input should be greater than or equal to 0",
    ),
]


def _with(override: str) -> str:
    """_with puts the override's tables in place of the valid document's."""
    tables = {"[target]", "[rate]", "[[regions]]"}
    replaced = {t for t in tables if override.startswith(t)}
    keep = VALID
    for table in replaced:
        start = keep.index(table)
        end = min(
            [keep.index(t, start + 1) for t in tables if t in keep[start + 1 :]] or [len(keep)]
        )
        keep = keep[:start] + keep[end:]
    if override.startswith("["):
        return keep + "\n" + override + "\n"
    return override + "\n" + keep


@pytest.mark.parametrize(("override", "expected"), BAD)
def test_malformed_scenarios_are_one_line_naming_file_key_and_fix(tmp_path, override, expected):
    path = tmp_path / "bad.toml"
    path.write_text(_with(override))
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    problem = next(p for p in caught.value.problems if expected.lower() in p.lower())
    assert problem.startswith(f"{path}: ")
    assert "; " in problem
    assert all("\n" not in p for p in caught.value.problems)


def test_toml_syntax_and_missing_files(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[rate\n")
    with pytest.raises(ScenarioError, match="invalid TOML"):
        load_scenario(path)
    with pytest.raises(ScenarioError, match="file not found"):
        load_scenario(tmp_path / "none.toml")


def test_check_command_exit_codes_and_output(tmp_path):
    good = edgebench("scenario", "check", *SCENARIOS)
    assert good.exit_code == 0, good.output
    assert good.stdout.count(": ok: ") == len(SCENARIOS)
    path = tmp_path / "bad.toml"
    path.write_text(_with("[rate]\nmode = 'gentle'\nlimit = 0"))
    bad = edgebench("scenario", "check", path)
    assert bad.exit_code == 2
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 2  # mode and limit (the missing stages once the rest reads)
    assert all(line.startswith(f"Error: {path}: rate.") for line in lines)
    assert isinstance(bad.exception, SystemExit)


def test_sample_command_prints_the_first_requests():
    result = edgebench("scenario", "sample", "scenarios/smoke.toml", "-n", "4")
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 4
    assert all('"application":"my-game"' in line for line in lines)
    assert "POST /v2/" in lines[0]


def test_the_fleet_overflow_scenario_says_the_private_capacity_its_hosts_hold():
    from emulator import load_world

    scenario = load_scenario("scenarios/fleet-overflow.toml")
    hosts = load_world().private_hosts
    active = sum(
        hosts[h].capacity for h in scenario.mix.private_host_ids if hosts[h].status == "ACTIVE"
    )
    assert f"{active} private slots" in scenario.description
