"""Mistakes are usage errors, not results: each one reproduced, then its one-line answer."""

import io
import textwrap

import click
import orjson
import pytest

from edgebench.cli import main
from edgebench.manifest import write_manifest
from edgebench.records import RecordWriter
from edgebench.runner.progress import Progress

from .conftest import edgebench, free_port
from .test_report import synthetic_run


def commands(group: click.Group, prefix: str = "edgebench"):
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from commands(command, f"{prefix} {name}")
        else:
            yield f"{prefix} {name}", command


@pytest.mark.parametrize(("name", "command"), list(commands(main)))
def test_every_option_has_a_description_and_every_command_lists_its_exit_codes(name, command):
    undescribed = [p.name for p in command.params if isinstance(p, click.Option) and not p.help]
    assert undescribed == [], name
    assert "Exit codes:" in (command.help or ""), name


def scenario_with(tmp_path, extra: str, regions: str = 'countries = ["US"]'):
    path = tmp_path / "s.toml"
    path.write_text(
        textwrap.dedent(
            f"""
            name = "s"
            [target]
            application = "my-game"
            version = "1.0.0"
            {extra}
            [rate]
            stages = [{{ kind = "hold", duration = "10s", rate = 5 }}]
            [[regions]]
            name = "r"
            {regions}
            """
        )
    )
    return path


def test_a_misspelt_key_suggests_the_right_one(tmp_path):
    path = scenario_with(tmp_path, "[players]\nsizes = [1, 2]\nweigths = [1, 1]")
    done = edgebench("scenario", "check", path)
    assert done.exit_code == 2
    assert done.stderr == (
        f"Error: {path}: players.weigths: extra inputs are not permitted; did you mean 'weights'?\n"
    )


@pytest.mark.parametrize(("code", "meant"), [("UK", "GB"), ("DEU", "DE"), ("usa", "US")])
def test_a_country_written_another_way_suggests_its_iso_code(tmp_path, code, meant):
    path = scenario_with(tmp_path, "", f'countries = ["{code}"]')
    done = edgebench("scenario", "check", path)
    assert done.exit_code == 2
    assert f"unknown country code {code!r}; did you mean {meant!r}?" in done.stderr


def test_a_negative_duration_must_be_positive():
    done = edgebench("run", "scenarios/smoke.toml", "--duration", "-5s")
    assert done.exit_code == 2
    assert done.stderr == "Error: --duration '-5s': must be positive; e.g. 15s\n"


def scenario_in_world(tmp_path, world: str):
    """scenario_in_world is a scenario file whose target.world is `world`."""
    text = scenario_with(tmp_path, "").read_text()
    (tmp_path / "s.toml").write_text(
        text.replace('version = "1.0.0"', f'version = "1.0.0"\nworld = "{world}"')
    )
    return tmp_path / "s.toml"


def test_a_missing_world_file_is_caught_by_scenario_check_naming_the_key(tmp_path):
    done = edgebench("scenario", "check", scenario_in_world(tmp_path, "worlds/nowhere.toml"))
    assert done.exit_code == 2
    assert done.stderr.startswith(
        f"Error: {tmp_path / 's.toml'}: target.world: 'worlds/nowhere.toml' not found"
    )
    assert done.stderr.count("\n") == 1


def test_sample_prints_json_lines_and_the_dry_run_shows_the_same_bodies():
    sample = edgebench("scenario", "sample", "scenarios/smoke.toml", "-n", "3")
    assert sample.exit_code == 0, sample.output
    lines = [orjson.loads(line) for line in sample.stdout.splitlines()]
    assert [set(line) for line in lines] == [{"due_s", "endpoint", "body"}] * 3
    dry = edgebench("run", "scenarios/smoke.toml", "--dry-run")
    shown = [line.split(" ", 3)[-1] for line in dry.stdout.splitlines() if line.startswith("  /")]
    assert [orjson.loads(body) for body in shown] == [line["body"] for line in lines]
    annotated = edgebench("scenario", "sample", "scenarios/smoke.toml", "-n", "1", "--annotated")
    assert "s POST /v2/" in annotated.stdout


def test_run_takes_the_rate_mode_factor_world_and_seed_as_the_locustfile_does():
    args = ["run", "scenarios/smoke.toml", "--dry-run", "--rate-mode", "exceed"]
    args += ["--rate-factor", "2", "--seed", "3", "--world", "scenarios/worlds/small.toml"]
    done = edgebench(*args)
    assert done.exit_code == 0, done.output
    assert "rate: exceed mode, limit 40/s, factor 2" in done.stdout
    seeded = edgebench("run", "scenarios/smoke.toml", "--dry-run", "--seed", "4")
    assert done.stdout.split("first requests")[1] != seeded.stdout.split("first requests")[1]
    missing = edgebench("run", "scenarios/smoke.toml", "--dry-run", "--world", "nope.toml")
    assert missing.exit_code == 2
    assert missing.stderr == "Error: --world nope.toml: no such file; give a world file's path\n"


def test_a_check_that_needs_a_baseline_without_one_is_a_usage_error(tmp_path):
    run = synthetic_run(tmp_path / "run", limit_thresholds=["p95_ms <= baseline * 1.1"])
    done = edgebench("analyze", run)
    assert done.exit_code == 2
    assert done.stderr == (
        "Error: 'p95_ms <= baseline * 1.1' compares with a baseline run; pass --baseline RUN_DIR\n"
    )
    assert not (run / "summary.json").exists()
    checks = tmp_path / "relative.toml"
    checks.write_text('checks = ["p95_ms <= baseline * 1.1"]\n')
    refused = edgebench("run", "scenarios/smoke.toml", "--thresholds", checks)
    assert refused.exit_code == 2
    assert "compares with a baseline run, which `edgebench run` has none of" in refused.stderr


def run_left_running(tmp_path, embedded: bool):
    folder = tmp_path / "run"
    host = f"http://127.0.0.1:{free_port()}"  # nothing listens there any more
    write_manifest(folder, run_id="r1", target={"host": host}, emulator={"embedded": embedded})
    log = RecordWriter(folder / "requests-r1-w0.jsonl")
    for index in range(3):
        log.add({"index": index, "status": 202, "request_id": f"id{index}"})
    log.close()
    return folder, host


def test_cleanup_of_a_run_whose_embedded_emulator_is_gone_says_so(tmp_path):
    folder, host = run_left_running(tmp_path, embedded=True)
    done = edgebench("cleanup", folder)
    assert done.exit_code == 0, done.output
    assert done.stdout == (
        f"cleanup: the run's embedded emulator ({host}) ended with the run, and its "
        "deployments with it: nothing is left to stop\n"
    )


def test_cleanup_against_a_host_that_does_not_answer_says_so_and_keeps_them(tmp_path):
    folder, host = run_left_running(tmp_path, embedded=False)
    done = edgebench("cleanup", folder)
    assert done.exit_code == 1
    assert done.stdout.startswith(f"cleanup: {host} does not answer (connection refused)")
    assert "3 left" in done.stdout
    assert orjson.loads((folder / "cleanup.json").read_bytes())["left"] == ["id0", "id1", "id2"]


def test_the_progress_line_says_which_window_each_figure_covers(tmp_path):
    now = [0.0]
    out = io.StringIO()
    progress = Progress(tmp_path, 60, out=out, clock=lambda: now[0])
    log = RecordWriter(tmp_path / "requests-r1-w0.jsonl")
    for outcome in ["accepted"] * 9 + ["rate_limited"]:
        log.add({"outcome": outcome})
    log.close()
    now[0] = 5.0
    progress.update()
    assert out.getvalue().splitlines()[-1] == (
        "[00:05 elapsed, 00:55 left] last 5 s: offered 2.0/s, accepted 1.8/s | "
        "run so far: 202 90.0% 422 0.0% 429 10.0% other 0.0%, dropped 0"
    )


def test_a_bad_world_file_is_caught_by_scenario_check_and_by_run_before_any_folder(tmp_path):
    (tmp_path / "worlds").mkdir()
    (tmp_path / "worlds" / "bad.toml").write_text("[[locations]]\ncity = 'X'\n")
    checked = edgebench("scenario", "check", scenario_in_world(tmp_path, "worlds/bad.toml"))
    assert checked.exit_code == 2
    assert checked.stderr.startswith(f"Error: {tmp_path / 's.toml'}: target.world: ")
    assert "bad.toml" in checked.stderr
    results = tmp_path / "run"
    done = edgebench("run", tmp_path / "s.toml", "--results-dir", results)
    assert done.exit_code == 2
    # The world is read before anything starts: the file, the key, the fix.
    assert done.stderr.startswith(f"Error: {tmp_path / 'worlds' / 'bad.toml'}: locations[0]")
    assert done.stderr.count("Error:") == 1
    assert "['" not in done.stderr  # a line, not a Python list
    assert not results.exists()  # no empty results folder left behind


def test_a_run_started_from_the_form_counts_its_time_from_its_first_record(tmp_path):
    now = [0.0]
    out = io.StringIO()
    progress = Progress(tmp_path, 60, out=out, clock=lambda: now[0], from_first_record=True)
    now[0] = 40.0  # nobody pressed start for 40 s
    progress.update()
    log = RecordWriter(tmp_path / "requests-r1-w0.jsonl")
    log.add({"outcome": "accepted"})
    log.close()
    progress.update()
    now[0] = 45.0
    progress.update()
    assert out.getvalue().splitlines()[-1].startswith("[00:05 elapsed, 00:55 left]")


def test_form_runs_each_follow_their_own_folder_and_length_and_idle_prints_nothing(tmp_path):
    from edgebench.manifest import write_manifest

    now = [0.0]
    out = io.StringIO()
    progress = Progress(tmp_path, 60, out=out, clock=lambda: now[0], from_first_record=True)
    progress.update()
    assert out.getvalue() == ""  # nobody pressed START: no countdown runs
    for folder, duration, at in ((tmp_path, 20, 10.0), (tmp_path / "run-2", 30, 100.0)):
        write_manifest(folder, epoch=at, scenario={"duration_s": duration})
        now[0] = at
        log = RecordWriter(folder / "requests-r1-w0.jsonl")
        log.add({"outcome": "accepted"})
        log.close()
        progress.update()
        now[0] = at + 5
        progress.update()
        assert (
            out.getvalue().splitlines()[-1].startswith(f"[00:05 elapsed, 00:{duration - 5} left]")
        )
    printed = out.getvalue()
    now[0] = 200.0  # the second run is over and nothing comes: the terminal stays quiet
    progress.update()
    assert out.getvalue() == printed


@pytest.mark.parametrize(
    ("args", "old", "new"),
    [
        (["emulator", "--rate-limit", "5", "--help"], "emulator --rate-limit", "emulator --limit"),
        (
            ["advise", "scenarios/smoke.toml", "--live", "--help"],
            "advise --live",
            "advise --confirm",
        ),
    ],
)
def test_an_old_spelling_still_works_with_a_one_line_notice(args, old, new):
    done = edgebench(*args)
    assert done.exit_code == 0, done.output
    assert (
        done.stderr == f"edgebench: notice: `{old}` is `{new}` now (the old spelling still works)\n"
    )
