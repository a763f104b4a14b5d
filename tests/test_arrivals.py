"""Arrivals as matchmakers make them: uniform, Poisson and tick, each split exactly, seeded."""

import math
import textwrap
from collections import Counter

import numpy as np
import pytest

from edgebench._errors import ScenarioError
from edgebench.plan.scenario import load_scenario
from edgebench.plan.schedule import Schedule, build_segments
from edgebench.plan.starts import Starts


def schedule(kind: str, rate: float = 20, seconds: float = 2000, seed: int = 5, **options):
    stages = [("hold", seconds, rate)]
    return Schedule(
        build_segments(stages, seconds),
        seconds,
        options.get("limit"),
        options.get("margin_s", 0.0),
        arrivals=kind,
        tick_s=options.get("tick_s", 5.0),
        seed=seed,
    )


def per_second(arrivals) -> np.ndarray:
    seconds = Counter(math.floor(a.due_s) for a in arrivals)
    return np.array([seconds.get(s, 0) for s in range(max(seconds) + 1)])


def test_poisson_counts_per_second_have_the_rate_as_mean_and_as_variance():
    counts = per_second(schedule("poisson").arrivals())
    assert counts.mean() == pytest.approx(20, rel=0.02)
    assert 0.8 <= counts.var() / counts.mean() <= 1.2


def test_uniform_arrivals_stay_exact():
    counts = per_second(schedule("uniform", seconds=100).arrivals())
    assert set(counts) == {20}


def test_tick_batches_hold_exactly_the_matches_formed_since_the_last_tick():
    formed = [a.due_s for a in schedule("poisson", seconds=60).arrivals()]
    released = Counter(a.due_s for a in schedule("tick", seconds=60).arrivals())
    assert set(released) <= {5.0 * k for k in range(13)}
    for tick in range(1, 12):
        batch = sum(1 for t in formed if 5.0 * (tick - 1) < t <= 5.0 * tick)
        assert released[5.0 * tick] == batch
    assert sum(released.values()) == sum(1 for t in formed if t <= 55)  # 60 s: the last at 55


@pytest.mark.parametrize("kind", ["uniform", "poisson", "tick"])
@pytest.mark.parametrize("limit", [None, 40])
def test_every_kind_splits_exactly_across_workers(kind, limit):
    whole = schedule(kind, rate=50, seconds=30, limit=limit, margin_s=0.015)
    everything = [(a.index, a.due_s) for a in whole.arrivals()]
    for workers in (2, 3):
        parts = [(a.index, a.due_s) for i in range(workers) for a in whole.arrivals(i, workers)]
        assert sorted(parts) == everything


def test_respect_mode_holds_any_kind_to_the_limit_in_every_window():
    for kind in ("poisson", "tick"):
        dues = [a.due_s for a in schedule(kind, rate=39, seconds=60, limit=40).arrivals()]
        most = max(np.searchsorted(dues, t + 1.0, "left") - i for i, t in enumerate(dues))
        assert most <= 40, kind


def test_draws_follow_the_seed():
    first = [a.due_s for a in schedule("poisson", seconds=10).arrivals()]
    assert first == [a.due_s for a in schedule("poisson", seconds=10).arrivals()]
    assert first != [a.due_s for a in schedule("poisson", seconds=10, seed=6).arrivals()]


def test_a_burst_is_sent_one_start_after_another_not_dropped():
    whole = schedule("tick", rate=10, seconds=12)
    starts = Starts(whole.arrivals(), 0.0, lambda _index: "deploy")
    taken, dropped = [], []
    for _ in range(60):
        start, missed = starts.take("deploy", 5.0)  # one user, at the first tick
        dropped += missed
        if start is None or start.due > 5.0:
            break
        taken.append(start)
    assert len(taken) == sum(1 for a in whole.arrivals() if a.due_s == 5.0) > 20
    assert dropped == []


def test_a_scenario_chooses_its_arrivals(tmp_path):
    path = tmp_path / "tick.toml"
    path.write_text(
        textwrap.dedent(
            """
            name = "tick"
            [target]
            application = "my-game"
            version = "1.0.0"
            [rate]
            arrivals = "tick"
            tick = "2s"
            stages = [{ kind = "hold", duration = "20s", rate = 10 }]
            [[regions]]
            name = "r"
            countries = ["US"]
            """
        )
    )
    released = {a.due_s for a in Schedule.from_scenario(load_scenario(path)).arrivals()}
    assert released <= {2.0 * k for k in range(10)}
    path.write_text(path.read_text().replace('arrivals = "tick"', 'arrivals = "bursty"'))
    with pytest.raises(ScenarioError, match=r"rate\.arrivals: input should be 'uniform'"):
        load_scenario(path)
