import pytest

from emulator import Cause, DeployRequest, Platform, Status, StopOutcome
from geo import Position

ALPHA, BETA, FAR = Position(0, 0), Position(0, 10), Position(0, 120)


def request(*positions, **extra) -> DeployRequest:
    return DeployRequest.of_players("game", "1.0", tuple(positions) or (ALPHA,), **extra)


def test_deployments_go_to_the_nearest_location_with_room(small_world):
    platform = Platform(small_world)
    cities = [platform.deploy(request(Position(0, 1)), now=0).location.city for _ in range(3)]
    assert cities == ["Alpha", "Alpha", "Beta"]


def test_a_full_world_answers_no_capacity_and_records_an_error(small_world):
    platform = Platform(small_world)
    for _ in range(3):
        platform.deploy(request(Position(0, 1)), now=0)
    failed = platform.deploy(request(Position(0, 1)), now=0)
    assert failed.status is Status.ERROR
    assert failed.error_detail == Cause.NO_CAPACITY
    assert platform.failures == {"no_capacity": 1}
    assert platform.get(failed.request_id, now=0) is failed


def test_placement_uses_the_players_centre(small_world):
    platform = Platform(small_world)
    dep = platform.deploy(request(Position(0, 8), Position(0, 14)), now=0)
    assert dep.location.city == "Beta"


@pytest.mark.parametrize(
    ("positions", "cached", "cause"),
    [
        ((Position(0, 60),), False, Cause.OUT_OF_RANGE),
        ((Position(0, 10),), True, None),
        ((), False, Cause.UNLOCATABLE_USERS),
    ],
)
def test_range_cache_and_unlocatable_users(small_world, positions, cached, cause):
    platform = Platform(small_world)
    req = DeployRequest.of_players("game", "1.0", positions, require_cached=cached)
    dep = platform.deploy(req, now=0)
    if cause is None:
        assert dep.location.city == "Alpha"  # Beta is nearer but not cached
    else:
        assert (dep.status, dep.error_detail) == (Status.ERROR, cause)


def test_require_cached_with_no_cached_location_in_range(small_world):
    platform = Platform(small_world)
    dep = platform.deploy(request(FAR, require_cached=True), now=0)
    assert dep.error_detail == Cause.NO_CACHED_LOCATION


def test_fleets_fill_active_hosts_in_order_then_overflow_to_cloud(small_world):
    platform = Platform(small_world)
    hosts = ("h-pending", "h-alpha")
    first = platform.deploy(request(FAR, private_host_ids=hosts), now=0)
    second = platform.deploy(request(FAR, private_host_ids=hosts), now=0)
    assert first.host.id == "h-alpha"
    assert first.location.city == "Alpha"
    assert second.host is None
    assert second.location.city == "Far"
    assert platform.active_by_host() == {"h-alpha": 1}


def test_lifecycle_runs_on_the_callers_clock_and_frees_the_slot(small_world):
    platform = Platform(small_world)
    hooks = {"webhook_on_ready": "u", "webhook_on_terminated": "u"}
    dep = platform.deploy(request(Position(0, 10), webhooks=hooks), now=0)  # Beta, boot 2 s
    assert dep.status is Status.SEEKING
    platform.advance(0.4)
    assert platform.get(dep.request_id, now=0.4).status is Status.DEPLOYING
    platform.advance(2.0)
    assert (dep.status, dep.ready_at) == (Status.READY, 2.0)  # its webhook was due
    assert platform.active_by_location() == {"Beta": 1}
    platform.advance(11.99)
    assert dep.status is Status.READY
    platform.advance(12.0)
    assert (dep.status, dep.removed_at) == (Status.TERMINATED, 12.0)
    assert platform.active_by_location() == {}
    assert [event for event, _, _ in platform.drain_outbox()] == [
        "webhook_on_ready",
        "webhook_on_terminated",
    ]


def test_late_advance_applies_transitions_at_their_own_times(small_world):
    platform = Platform(small_world)
    dep = platform.deploy(request(Position(0, 10)), now=0)
    platform.advance(100)
    assert (dep.ready_at, dep.removed_at) == (2.0, 12.0)


def test_stop_answers_as_the_real_api(small_world):
    platform = Platform(small_world)
    dep = platform.deploy(request(Position(0, 10)), now=0)
    assert platform.stop(dep.request_id, now=0.5) is StopOutcome.STOPPING
    platform.advance(2.0)
    assert dep.status is Status.TERMINATING  # on time, though nobody read it
    assert platform.stop(dep.request_id, now=2.1) is StopOutcome.GONE
    platform.advance(3.0)
    assert dep.status is Status.TERMINATED
    ready = platform.deploy(request(Position(0, 10)), now=5)
    platform.advance(7.0)
    assert platform.stop(ready.request_id, now=7.0) is StopOutcome.STOPPED
    assert platform.stop("nope", now=7.0) is StopOutcome.UNKNOWN


def test_errors_are_cleaned_up_after_retention(small_world):
    platform = Platform(small_world)
    dep = platform.deploy(request(Position(0, 60)), now=0)
    assert platform.stop(dep.request_id, now=1) is StopOutcome.STOPPED
    platform.advance(2.0)
    assert dep.status is Status.TERMINATED
    failed = platform.deploy(request(Position(0, 60)), now=10)
    platform.advance(15)
    assert failed.status is Status.TERMINATED
    assert platform.active(now=100) == []


def test_same_seed_same_run(small_world):
    def run(seed):
        platform = Platform(small_world, seed=seed)
        deps = [platform.deploy(request(Position(0, i % 12)), now=i) for i in range(10)]
        return [(d.request_id, d.port, d.location.city if d.location else None) for d in deps]

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_reset_forgets_everything(small_world):
    platform = Platform(small_world, seed=2)
    first = platform.deploy(request(), now=0).request_id
    platform.reset()
    assert platform.active(now=100) == []
    assert platform.deploy(request(), now=0).request_id == first


def test_terminated_deployments_are_forgotten_past_the_retention_cap(small_world):
    platform = Platform(small_world, retain_terminated=2)
    deps = [platform.deploy(request(Position(0, 60)), now=0) for _ in range(4)]
    platform.advance(10)
    assert [platform.get(d.request_id, now=10) is not None for d in deps] == [
        False,
        False,
        True,
        True,
    ]


def test_a_match_nobody_watches_still_ends_on_time_and_frees_its_slot(small_world):
    platform = Platform(small_world)
    platform.deploy(request(Position(0, 10)), now=0)  # Beta: boot 2 s, match 10 s
    platform.advance(11.9)
    assert platform.active_by_location() == {"Beta": 1}
    platform.advance(12.0)
    assert platform.active_by_location() == {}
    assert platform.active_count() == 0
