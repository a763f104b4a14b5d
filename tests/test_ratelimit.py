from hypothesis import given, settings
from hypothesis import strategies as st

from emulator import RateLimiter, RateLimits, SlidingWindowLimiter
from emulator._ratelimit import RESOLUTION_S


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@settings(max_examples=200, deadline=None)
@given(
    gaps=st.lists(st.floats(min_value=0, max_value=0.2), min_size=1, max_size=400),
    limit=st.integers(min_value=1, max_value=50),
)
def test_no_window_ever_holds_more_than_the_limit(gaps, limit):
    clock = FakeClock()
    limiter = SlidingWindowLimiter(limit, clock=clock)
    accepted = []
    for gap in gaps:
        clock.now += gap
        if limiter.acquire("token") == 0.0:
            accepted.append(clock.now)
    # Every window [t, t + 1) that starts at an accepted request is the worst case.
    for i, start in enumerate(accepted):
        in_window = sum(1 for t in accepted[i:] if t < start + 1.0 - RESOLUTION_S)
        assert in_window <= limit


def test_a_client_at_exactly_the_limit_is_never_refused():
    clock = FakeClock()
    limiter = SlidingWindowLimiter(40, clock=clock)
    for i in range(400):
        clock.now = i / 40
        assert limiter.acquire("token") == 0.0


def test_refusal_says_when_a_slot_frees_and_refusals_do_not_count():
    clock = FakeClock()
    limiter = SlidingWindowLimiter(2, clock=clock)
    assert limiter.acquire("t") == 0.0
    clock.now = 0.25
    assert limiter.acquire("t") == 0.0
    clock.now = 0.5
    assert limiter.acquire("t") == 0.5
    clock.now = 1.0
    assert limiter.acquire("t") == 0.0
    assert limiter.acquire("other") == 0.0


def test_budgets_are_per_token_and_per_endpoint_unless_shared():
    clock = FakeClock()
    separate = RateLimiter(RateLimits(deploy=1, status=1), clock=clock)
    assert separate.check("a", "deploy") is None
    assert separate.check("a", "deploy") == 1
    assert separate.check("a", "fleet-deploy") is None
    assert separate.check("b", "deploy") is None
    assert separate.check("a", "stop") is None  # no known limit on stop
    shared = RateLimiter(RateLimits(deploy=1, shared_deploy_limit=True), clock=clock)
    assert shared.check("a", "deploy") is None
    assert shared.check("a", "fleet-deploy") == 1


def test_disabled_limits_accept_everything():
    limiter = RateLimiter(RateLimits(enabled=False), clock=FakeClock())
    assert all(limiter.check("a", "deploy") is None for _ in range(1000))
