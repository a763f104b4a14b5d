"""sleep_until: never early, on a timerfd where Linux has one, closed when killed.

How late it is belongs to `make bench-lag` (a timed figure), not here.
"""

import os
import sys
import time

import gevent
import pytest

from edgebench.traffic import alarm

# Started processes and servers, timed: one after another, in the first group of live
# tests (the second runs on the other worker: Makefile).
pytestmark = pytest.mark.xdist_group("live")

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="timerfd is Linux's")


def open_files() -> int:
    gevent.sleep(0)  # the hub's own files (its loop) are made at its first wait
    return len(os.listdir("/proc/self/fd"))


def test_a_time_that_has_come_returns_at_once_without_a_timer(monkeypatch):
    monkeypatch.setattr(alarm, "_wait_readable", lambda fd: pytest.fail("waited for a time gone"))
    alarm.sleep_until(time.time() - 1.0)


@linux
def test_it_waits_on_a_timerfd_and_never_returns_before_the_time(monkeypatch):
    waited = []
    real_wait = alarm._wait_readable
    monkeypatch.setattr(alarm, "_wait_readable", lambda fd: waited.append(fd) or real_wait(fd))
    # The coarse sleep before the lead returns at once: on a busy machine gevent's timer may
    # overshoot the lead (one in twenty did, beside the other pytest worker), leaving the
    # timerfd nothing to wait for; here it always has the whole wait.
    monkeypatch.setattr(alarm.gevent, "sleep", lambda seconds=0: None)
    gevent.get_hub()  # its own files are not the timers'
    before = open_files()
    for k in range(20):
        when = time.time() + alarm.LEAD_S + 0.001 * (k % 5 + 2)
        alarm.sleep_until(when)
        assert time.time() >= when
    assert len(waited) == 20
    assert open_files() == before


def test_without_timerfd_it_sleeps_on_gevents_timer_never_early(monkeypatch):
    monkeypatch.setattr(alarm, "_TIMERFD", None)
    for k in range(5):
        when = time.time() + 0.002 * (k + 1)
        alarm.sleep_until(when)
        assert time.time() >= when


def test_sleep_never_ends_early():
    for seconds in (0.0, 0.001, 0.003, 0.01):
        before = time.time()
        alarm.sleep(seconds)
        assert time.time() >= before + seconds


@linux
def test_a_file_is_open_only_for_the_last_stretch():
    before = open_files()
    sleeper = gevent.spawn(alarm.sleep_until, time.time() + 30.0)
    gevent.sleep(0.01)
    assert open_files() == before  # on gevent's timer until LEAD_S before the time
    sleeper.kill(block=True, timeout=5)
    assert sleeper.dead


@linux
def test_a_kill_while_waiting_ends_the_wait_and_closes_the_timer(monkeypatch):
    monkeypatch.setattr(alarm, "LEAD_S", 60.0)  # the whole wait on the timerfd
    before = open_files()
    sleeper = gevent.spawn(alarm.sleep_until, time.time() + 30.0)
    gevent.sleep(0.01)
    assert open_files() == before + 1
    sleeper.kill(block=True, timeout=5)
    assert sleeper.dead
    assert open_files() == before


@linux
def test_waiters_wake_in_the_order_of_their_times():
    woke = []
    start = time.time() + 0.01
    times = [start + 0.002 * k for k in (4, 0, 3, 1, 2)]  # apart by more than a busy pause
    sleepers = [gevent.spawn(lambda t=t: (alarm.sleep_until(t), woke.append(t))) for t in times]
    gevent.joinall(sleepers, timeout=5)
    assert woke == sorted(times)


@linux
def test_a_timer_that_cannot_be_set_falls_back_to_gevents_never_early(monkeypatch):
    create, _settime = alarm._TIMERFD
    monkeypatch.setattr(alarm, "_TIMERFD", (create, lambda *_args: -1))
    before = open_files()
    when = time.time() + 0.003
    alarm.sleep_until(when)
    assert time.time() >= when
    assert open_files() == before
