"""sleep and sleep_until: gevent waits that end on time, to the tenth of a millisecond.

gevent's timers wake late: libev's epoll backend waits in whole milliseconds, rounded
up, so a gevent.sleep ends up to about 1.1 ms after it was due (p50 0.57, p99 1.13 ms at
1,000 wakes a second here), and all the wakes due within one millisecond come at once,
then queue behind each other. A Linux timerfd is a file the same loop watches, and the
kernel makes it readable within microseconds of its time (p50 0.09, p99 0.34 ms). A wait
here sleeps on gevent's timer until LEAD_S before its time, and the last stretch on a
timerfd of its own (so a file is open only for that stretch). A user sleeps in Locust's
own wait until LEAD_S before its start is due (there a stopping run kills it at once),
then here. Without timerfd (not Linux) the last stretch is gevent's too, as late as that.
"""

from __future__ import annotations

import ctypes
import os
import time

import gevent

# Longer than gevent's lateness (1.1 ms at p99), short enough for a stopping run to wait.
LEAD_S = 0.002
# libev's highest: when the timer and answers become ready together, the loop wakes the
# sender first, so a send waits behind other sends only, not behind answers' handling.
FIRST = 2
_CLOCK_REALTIME, _TFD_TIMER_ABSTIME = 0, 1  # time.time()'s clock; an absolute time
_TFD_NONBLOCK, _TFD_CLOEXEC = os.O_NONBLOCK, os.O_CLOEXEC  # Linux defines them as equal


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


def _timerfd_calls():
    """_timerfd_calls is libc's (timerfd_create, timerfd_settime), or None where it has none."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.timerfd_create, libc.timerfd_settime
    except (AttributeError, OSError):
        return None


_TIMERFD = _timerfd_calls()


def sleep(seconds: float) -> None:
    """sleep is gevent.sleep(seconds), on time."""
    sleep_until(time.time() + seconds)


def sleep_until(when: float) -> None:
    """sleep_until returns once time.time() >= when (unix time), never before.

    A kill (GreenletExit) lands here as in any gevent wait; the timer is closed.
    """
    if (left := when - time.time()) > LEAD_S:
        gevent.sleep(left - LEAD_S)
    if when > time.time() and not _waited_on_timerfd(when):
        _sleep_until_coarse(when)


def _waited_on_timerfd(when: float) -> bool:
    """_waited_on_timerfd waits on a timerfd of its own until `when`; False: there is none."""
    fd = _TIMERFD[0](_CLOCK_REALTIME, _TFD_NONBLOCK | _TFD_CLOEXEC) if _TIMERFD else -1
    if fd < 0:
        return False
    try:
        seconds, fraction = divmod(when, 1.0)
        due = _Itimerspec(it_value=_Timespec(int(seconds), int(fraction * 1e9)))
        if _TIMERFD[1](fd, _TFD_TIMER_ABSTIME, ctypes.byref(due), None) != 0:
            return False
        _wait_readable(fd)  # once the time has come: at once if it has already
        return True
    finally:
        os.close(fd)


def _wait_readable(fd: int) -> None:
    hub = gevent.get_hub()
    watcher = hub.loop.io(fd, 1, priority=FIRST)  # 1: readable
    try:
        hub.wait(watcher)
    finally:
        watcher.close()


def _sleep_until_coarse(when: float) -> None:
    while (left := when - time.time()) > 0:
        gevent.sleep(left)
