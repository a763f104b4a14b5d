"""`edgebench history`: key numbers across runs, the newest judged against the median before it.

Synthetic run folders (a summary.json and a manifest.json each, as a CI job keeps them)
whose trend and regression are known.
"""

import orjson
import pytest
from click.testing import CliRunner

from analysis.history import rolling_median
from edgebench.cli import main


def summary(p95: float, share_422: float = 0.0, accepted: int = 990) -> dict:
    sent = 1000
    return {
        "requests_total": sent,
        "requests_sent": sent,
        "dropped_starts": 0,
        "outcome_counts": {"accepted": accepted, "allocation_failure": round(share_422 * sent)},
        "offered_rate_per_s": 40.0,
        "accepted_rate_per_s": accepted / 25,
        "latency_ms": {
            "from_send": {"p50": p95 / 2, "p90": p95, "p95": p95, "p99": p95, "max": p95},
            "from_schedule": {"p50": p95 / 2, "p90": p95, "p95": p95, "p99": p95, "max": p95},
        },
        "time_to_ready_s": {"p50": 3.0, "p95": 4.0, "p99": 5.0},
        "player_wait_s": {"p50": 3.0, "p95": 4.5, "p99": 6.0},
    }


def runs(tmp_path, p95s: list[float]) -> list[str]:
    folders = []
    for number, p95 in enumerate(p95s):
        folder = tmp_path / f"run-{number:02d}"
        folder.mkdir()
        (folder / "summary.json").write_bytes(orjson.dumps(summary(p95)))
        manifest = {"started_at": 1_800_000_000 + 3600 * number, "git_commit": f"{number:040x}",
                    "scenario": {"name": "smoke"}, "versions": {"edgebench": "0.1.0"}}  # fmt: skip
        (folder / "manifest.json").write_bytes(orjson.dumps(manifest))
        folders.append(str(folder))
    return folders


def history(*args: str):
    return CliRunner().invoke(main, ["history", *args])


def test_a_steady_trend_passes_and_is_drawn_in_time_order(tmp_path):
    folders = runs(tmp_path, [20.0, 21.0, 19.5, 20.5, 20.0, 21.0])
    out = tmp_path / "history"
    done = history(
        *reversed(folders), "--check", "p95_ms <= median * 1.1", "--results-dir", str(out)
    )
    assert done.exit_code == 0, done.output
    lines = [line for line in done.output.splitlines() if line.startswith("run-")]
    assert [line.split()[0] for line in lines] == [f"run-{n:02d}" for n in range(6)]
    assert lines[-1].endswith("<- newest")
    facts = orjson.loads((out / "history.json").read_bytes())
    assert facts["rolling_median"]["p95_ms"] == 20.0  # of the five runs before the newest
    assert facts["checks"] == [
        {"check": "p95_ms <= median * 1.1", "actual": 21.0, "limit": pytest.approx(22.0),
         "passed": True}
    ]  # fmt: skip
    assert "data:image/png;base64," in (out / "history.html").read_text()


def test_the_newest_run_regressing_fails_with_junit(tmp_path):
    folders = runs(tmp_path, [20.0, 21.0, 19.5, 20.5, 20.0, 30.0])
    out = tmp_path / "history"
    done = history(*folders, "--check", "p95_ms <= median * 1.1", "--check", "share_429 == 0",
                   "--results-dir", str(out))  # fmt: skip
    assert done.exit_code == 1, done.output
    assert "FAILED: p95_ms <= median * 1.1: 30 vs 22" in done.output
    junit = (out / "junit.xml").read_text()
    assert 'failures="1"' in junit
    assert 'tests="2"' in junit


def test_the_median_leaves_out_runs_without_the_metric():
    assert rolling_median([{"p95_ms": 10.0}, {"p95_ms": None}, {"p95_ms": 30.0}]) == {
        "p95_ms": 20.0
    }


@pytest.mark.parametrize(
    ("make", "args", "says"),
    [
        (lambda p: [str(p)], [], "no summary.json; run `edgebench analyze"),
        (lambda p: runs(p, [1.0]), ["--check", "p95_ms <= baseline"], "write 'p95_ms <= median'"),
        (lambda p: runs(p, [1.0]), ["--check", "p95 < 3"], "unknown metric"),
    ],
)
def test_bad_history_input_is_one_line_and_exit_2(tmp_path, make, args, says):
    done = history(*make(tmp_path), *args, "--results-dir", str(tmp_path / "out"))
    assert done.exit_code == 2, done.output
    assert says in done.output
    assert "Traceback" not in done.output
