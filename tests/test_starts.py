"""Starts: dealing scheduled starts to free users, and counting those nobody was free for."""

from edgebench.plan.schedule import Arrival
from edgebench.plan.starts import Starts

EPOCH = 1000.0


def arrivals(*dues: float) -> list[Arrival]:
    return [Arrival(index, due, 0, 10.0) for index, due in enumerate(dues)]


def by_parity(index: int) -> str:
    return "even" if index % 2 == 0 else "odd"


def indices(starts) -> list[int]:
    return [start.arrival.index for start in starts]


def test_a_free_user_takes_the_next_start_of_its_endpoint_ahead_of_time():
    starts = Starts(iter(arrivals(0.1, 0.2, 0.3, 0.4)), EPOCH, by_parity)
    odd, dropped = starts.take("odd", now=EPOCH)
    assert (odd.arrival.index, odd.due, odd.endpoint, dropped) == (1, EPOCH + 0.2, "odd", [])
    even, _ = starts.take("even", now=EPOCH)
    assert even.arrival.index == 0  # drawn while looking for the odd one, kept for its endpoint
    assert starts.take("odd", now=EPOCH)[0].arrival.index == 3


def test_starts_that_came_due_with_no_free_user_are_dropped_and_the_latest_is_taken():
    starts = Starts(iter(arrivals(0.1, 0.2, 0.3, 0.4, 0.5)), EPOCH, lambda _: "deploy")
    start, dropped = starts.take("deploy", now=EPOCH + 0.35)
    assert start.arrival.index == 2
    assert indices(dropped) == [0, 1]


def test_one_late_start_is_still_sent_late_rather_than_dropped():
    starts = Starts(iter(arrivals(0.1, 0.2)), EPOCH, lambda _: "deploy")
    start, dropped = starts.take("deploy", now=EPOCH + 0.15)
    assert (start.arrival.index, dropped) == (0, [])


def test_a_start_given_back_is_the_next_one_taken_in_index_order():
    starts = Starts(iter(arrivals(0.1, 0.2, 0.3, 0.4)), EPOCH, lambda _: "deploy")
    first, second = starts.take("deploy", EPOCH)[0], starts.take("deploy", EPOCH)[0]
    starts.give_back(second)
    starts.give_back(first)
    assert indices(starts.take("deploy", EPOCH)[0] for _ in range(3)) == [0, 1, 2]


def test_the_schedule_ends_with_none():
    starts = Starts(iter(arrivals(0.1)), EPOCH, lambda _: "deploy")
    assert starts.take("deploy", EPOCH)[0] is not None
    assert starts.take("deploy", EPOCH) == (None, [])


def test_overdue_collects_every_start_due_by_the_end_and_no_later_one():
    starts = Starts(iter(arrivals(0.1, 0.2, 0.3, 0.4, 0.5, 0.6)), EPOCH, by_parity)
    taken, _ = starts.take("even", EPOCH)  # draws index 0 only
    starts.take("odd", EPOCH)  # draws 1, leaving nothing pending
    starts.give_back(taken)
    assert sorted(indices(starts.overdue(EPOCH + 0.45))) == [0, 2, 3]


def test_a_switch_hands_later_starts_to_the_new_share_and_voids_held_ones():
    # Worker 0 of 2 owned the even arrivals; from 0.45 s it owns all of them.
    dues = [0.1 * k for k in range(1, 11)]
    everything = arrivals(*dues)
    starts = Starts(iter(everything[0::2]), EPOCH, lambda _: "deploy")
    held, _ = starts.take("deploy", EPOCH)  # index 0, due 0.1
    ahead, _ = starts.take("deploy", EPOCH)  # index 2, due 0.3
    late, _ = starts.take("deploy", EPOCH)  # index 4, due 0.5: past the switch
    starts.switch(EPOCH + 0.45, iter(a for a in everything if a.due_s >= 0.45))
    assert starts.mine(held)
    assert starts.mine(ahead)
    assert not starts.mine(late)
    starts.give_back(late)  # a voided start given back is forgotten
    taken = [starts.take("deploy", EPOCH)[0].arrival.index for _ in range(6)]
    assert taken == [4, 5, 6, 7, 8, 9]
    assert starts.take("deploy", EPOCH) == (None, [])
