"""What a Locust process knows of the run, shared by the locustfile and its web UI module.

RunFacts are decided once, by the master (or the only process), when a run starts:
the results folder, the schedule's time zero and how many workers share it. They
reach each worker inside Locust's own spawn message: the master's `test_start`
fires before it sends any spawn message, every spawn message carries the master's
`parsed_options`, and a worker merges the options that are not Locust's own into
its `parsed_options` before it fires its `test_start` (locust/runners.py,
MasterRunner.start and WorkerRunner's "spawn" handler). So `publish` sets them
there on the master and `received` reads them on a worker; nothing else carries
them. When workers join or leave later, the master sends each a Split message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from edgebench._errors import EdgebenchError

if TYPE_CHECKING:
    pass

_PREFIX = "edgebench_"


@dataclass(frozen=True)
class RunFacts:
    """RunFacts is what every process of a run must agree on."""

    run_id: str  # in every record file's name: a folder's files are told apart by run
    results_dir: str
    epoch: float  # unix time of schedule time 0
    workers: int  # how many processes the schedule is split among at the start
    duration_s: float  # the run's length, with every override (--duration, -t) applied
    # The master's scenario and the files it reads (Scenario.inputs_digest): a worker reads
    # them from its own copy, and one whose copy differs would send another schedule.
    scenario_digest: str = ""

    def publish(self, options) -> None:
        """publish puts the facts in the master's options, which its spawn messages carry."""
        for name, value in vars(self).items():
            setattr(options, _PREFIX + name, value)

    @classmethod
    def received(cls, options) -> RunFacts:
        """received reads the facts a master published (or this process, when alone).

        A master of another edgebench version may publish other facts: EdgebenchError.
        """
        names = cls.__dataclass_fields__
        if missing := [name for name in names if not hasattr(options, _PREFIX + name)]:
            raise EdgebenchError(
                f"the master sent no {', '.join(missing)}: it runs another edgebench version; "
                "run the same version (image or checkout) on the master and every worker"
            )
        return cls(**{name: getattr(options, _PREFIX + name) for name in names})


class Split(NamedTuple):
    """Split is a worker's new place in the schedule from `from_s` on (workers joined or left)."""

    position: int
    workers: int  # how many share the schedule now
    from_s: float
