"""Progress of a running load test, read from the records it writes (a file room, no Locust).

Each update reads the lines added to requests-*.jsonl since the last one and
prints elapsed and remaining time, offered and accepted rate over the last few
seconds, and the outcome shares and dropped starts of the run so far (the line says
which window each figure covers): one line a few seconds apart, or one
line kept up to date on a terminal.
"""

from __future__ import annotations

import sys
import time
from collections import Counter, deque
from pathlib import Path

import orjson

from checks.outcomes import sent_count, shares

RECENT_S = 5.0
PRINT_EVERY_S = 5.0
CODES = {"share_202": "202", "share_422": "422", "share_429": "429", "share_error": "other"}


class Progress:
    """Progress follows a results folder's request logs as they grow."""

    def __init__(
        self,
        folder: Path,
        duration_s: float,
        out=sys.stderr,
        clock=time.monotonic,
        on_record=None,
        from_first_record: bool = False,
    ) -> None:
        self.root = self.folder = folder
        self.duration_s = duration_s
        self.on_record = on_record  # each new record, as it is read (the watched checks)
        self.out, self.clock = out, clock
        self.started = clock()
        # Runs started from the web UI's form: each in its own folder (the latest followed),
        # its time counted from its first record, its length its manifest's.
        self._from_first_record = from_first_record
        self._printed = 0.0
        self._live = out.isatty()
        self._begin()

    def _begin(self) -> None:
        """_begin starts the counts afresh (a run, or the next one from the web UI's form)."""
        self.outcomes: Counter[str] = Counter()
        self._offsets: dict[Path, int] = {}
        self._recent: deque[tuple[float, int, int]] = deque()  # (time, starts, accepted)
        self._starts = self._accepted = 0  # read since the last show

    def update(self) -> None:
        """update reads the new records and shows the line when it is time."""
        self.read()
        self.show()

    def read(self) -> None:
        """read takes in the records written since the last read."""
        if self._from_first_record:
            self._follow_latest()
        starts = accepted = 0
        for record in self._new_records():
            if self._from_first_record and not self.outcomes:
                self.started = self.clock()
            outcome = record.get("outcome")
            self.outcomes[outcome] += 1
            starts += 1
            accepted += outcome == "accepted"
            if self.on_record:
                self.on_record(record)
        self._starts += starts
        self._accepted += accepted

    def show(self) -> None:
        """show counts what was read since the last show, and prints the line when it is time
        (a web UI between runs prints nothing: no countdown runs then)."""
        now = self.clock()
        self._recent.append((now, self._starts, self._accepted))
        self._starts = self._accepted = 0
        while self._recent and self._recent[0][0] < now - RECENT_S:
            self._recent.popleft()
        if self._from_first_record and self._idle(now):
            return
        if self._live or now - self._printed >= PRINT_EVERY_S:
            self._show(self.line(now), end="\r" if self._live else "\n")
            self._printed = now

    def finish(self) -> None:
        self.update()
        if self._live:
            self._show("", end="\n")

    def line(self, now: float) -> str:
        """line is the progress of the run at `now` in one line."""
        elapsed = now - self.started
        remaining = max(0.0, self.duration_s - elapsed)
        span = max(1.0, min(RECENT_S, elapsed))
        offered = sum(s for _, s, _ in self._recent) / span
        accepted = sum(a for _, _, a in self._recent) / span
        sent = sent_count(self.outcomes)
        so_far = " ".join(
            f"{CODES[name]} {share or 0:.1%}" for name, share in shares(self.outcomes).items()
        )
        clock = f"[{_clock(elapsed)} elapsed, {_clock(remaining)} left]"
        if not sent:
            return f"{clock} waiting for the first records"
        return (
            f"{clock} last {RECENT_S:g} s: offered {offered:.1f}/s, accepted {accepted:.1f}/s | "
            f"run so far: {so_far}, dropped {self.outcomes['dropped']}"
        )

    def _idle(self, now: float) -> bool:
        """_idle: no run from the web UI's form is going (none yet, or the last is over and
        nothing came in a while)."""
        if not self.outcomes:
            return True
        over = now - self.started > self.duration_s
        return over and not any(starts for _, starts, _ in self._recent)

    def _follow_latest(self) -> None:
        """_follow_latest moves to the web UI's latest run folder, with its own length."""
        from edgebench.manifest import read_manifest
        from edgebench.runfolder import run_folders

        folders = run_folders(self.root)
        latest = folders[-1] if folders else self.root
        if latest == self.folder and self.outcomes:
            return
        manifest = read_manifest(latest)
        if latest != self.folder:
            self.folder = latest
            self._begin()
        told = (manifest.get("scenario") or {}).get("duration_s")
        self.duration_s = float(told or self.duration_s)

    def _new_records(self):
        for path in sorted(self.folder.glob("requests-*.jsonl")):
            offset = self._offsets.get(path, 0)
            with path.open("rb") as log:
                log.seek(offset)
                data = log.read()
            complete = data[: data.rfind(b"\n") + 1]  # a line still being written waits
            self._offsets[path] = offset + len(complete)
            for line in complete.splitlines():
                try:
                    yield orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue

    def _show(self, text: str, end: str) -> None:
        self.out.write(text.ljust(100) + end if self._live else text + end)
        self.out.flush()


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes:02d}:{seconds:02d}"
