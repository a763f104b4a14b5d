"""The outcomes of a scheduled start and their groups, counted alike in every room.

Each record's `outcome` is one of these (edgebench.records writes them; results/README.md
documents them). The traffic's live counts, the run's progress line, its watched checks
and the analysis all count the shares of sent requests from these groups:

    >>> shares({"accepted": 8, "rate_limited": 1, "server_error": 1, "dropped": 3})
    {'share_202': 0.8, 'share_422': 0.0, 'share_429': 0.1, 'share_error': 0.1}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

# What the API is expected to answer: a deployment, no capacity, the limit.
ACCEPTED, ALLOCATION_FAILURE, RATE_LIMITED = "accepted", "allocation_failure", "rate_limited"
ANSWERED = (ACCEPTED, ALLOCATION_FAILURE, RATE_LIMITED)
# Every other outcome of a sent request: the errors.
ERRORS = (
    "bad_request",  # 400
    "unauthorized",  # 401
    "client_error",  # any other 4xx
    "server_error",  # 5xx
    "transport_error",  # no answer: refused, reset, timed out, cut off mid-response
    "unexpected_status",  # an answer that is neither an error nor 202 (a 200, a 3xx)
)
SENT = (*ANSWERED, *ERRORS)
# Outcomes of a start that was never sent.
DROPPED = "dropped"  # no free user when it was due
BACKOFF = "backoff"  # due while honouring a 429's Retry-After (respect mode)
OVER_BUDGET = "over_budget"  # due after the run's deployment budget was used up
ABANDONED = "abandoned"  # waited in the client's queue past max_queue_wait: players gave up
NOT_SENT = (DROPPED, BACKOFF, OVER_BUDGET, ABANDONED)
# The shares of sent requests that checks, watches and charts name.
SHARES = {
    "share_202": (ACCEPTED,),
    "share_422": (ALLOCATION_FAILURE,),
    "share_429": (RATE_LIMITED,),
    "share_error": ERRORS,
}


def sent_count(counts: Mapping[str, int]) -> int:
    """sent_count is how many of the counted outcomes were sent requests.

    >>> sent_count({"accepted": 2, "dropped": 1, "transport_error": 1})
    3
    """
    return sum(number for outcome, number in counts.items() if outcome not in NOT_SENT)


def shares(counts: Mapping[str, int]) -> dict[str, float | None]:
    """shares are SHARES of the sent requests among counts (None: nothing was sent)."""
    sent = sent_count(counts)
    return {name: share_of(counts, group, sent) for name, group in SHARES.items()}


def share_of(counts: Mapping[str, int], group: Iterable[str], sent: int) -> float | None:
    """share_of is the share of `sent` requests whose outcome is in group (None: none sent)."""
    return sum(counts.get(outcome, 0) for outcome in group) / sent if sent else None
