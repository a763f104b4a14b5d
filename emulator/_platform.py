"""The capacity model: where deployments go, and what happens to them over time.

Platform is a pure state machine driven by the caller's clock (platform
seconds): no sockets, no threads, no wall time. The app turns HTTP into calls
here; tests drive it with a fake clock.

A deployment's life:

    SEEKING --(20% of boot)--> DEPLOYING --(boot)--> READY --(lifetime)--> TERMINATED
       |                                               |
       +-- DELETE /v1/stop: stopped once READY         +-- DELETE /v1/stop --> TERMINATING
                                                                  --(terminate_s)--> TERMINATED
    no location could take it: ERROR --(error_retention_s)--> TERMINATED

A slot at a location (or private host) is held from SEEKING until TERMINATED.

Boot and match length are drawn when a deployment is placed, so SEEKING ->
DEPLOYING -> READY need no timed event: a deployment catches up when it is read.
Timed events exist only where something must happen on time: a match ends (the
slot frees), a READY webhook is due, a stopped deployment finishes terminating.
"""

from __future__ import annotations

import copy
import heapq
import itertools
import math
import random
from array import array
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any

from emulator._events import EventQueue
from emulator._world import Location, PrivateHost, World
from geo import EARTH_RADIUS_KM, Position, centre

SEEK_SHARE_OF_BOOT = 0.2
RETAIN_TERMINATED = 10_000
# Players' centres are ranked against locations on a 0.1-degree grid (about 11 km),
# so the ranking of a grid cell is computed once and placement stays cheap. A ranking
# takes about 500 bytes: 16,384 of them (8 MB) is where a long soak's memory stops growing
# (at 65,536, 33 MB: a third of the emulator's, still growing after half an hour at 40/s).
GRID_PER_DEGREE = 10
RANKING_CACHE_SIZE = 16_384


class Status(StrEnum):
    """Status is a deployment state, spelt as Edgegap's /v1/status reports it."""

    SEEKING = "Status.SEEKING"
    DEPLOYING = "Status.DEPLOYING"
    READY = "Status.READY"
    ERROR = "Status.ERROR"
    TERMINATING = "Status.TERMINATING"
    TERMINATED = "Status.TERMINATED"


class Cause(StrEnum):
    """Cause says why a deployment could not be allocated (a 422)."""

    NO_CAPACITY = "no_capacity"
    OUT_OF_RANGE = "out_of_range"
    NO_CACHED_LOCATION = "no_cached_location"
    UNLOCATABLE_USERS = "unlocatable_users"


class StopOutcome(Enum):
    """StopOutcome is what DELETE /v1/stop answers: 200, 202, 410 or 404."""

    STOPPED = 200
    STOPPING = 202
    GONE = 410
    UNKNOWN = 404


@dataclass(slots=True)
class DeployRequest:
    """DeployRequest is a validated deploy or fleet-deploy body, as placement reads it.

    centre is the players' centre (geo.centre of the players who could be located; None:
    none could): DeployRequest.of_players works it out one request at a time, the
    simulator with geo.centres for thousands at once (the same rule, tested equal).
    """

    application: str
    version: str
    centre: Position | None
    require_cached: bool = False
    private_host_ids: tuple[str, ...] | None = None
    tags: tuple[str, ...] = ()
    webhooks: dict[str, str] = field(default_factory=dict)
    origin: str = ""  # where its players come from, as the simulator knows (a region)

    @classmethod
    def of_players(
        cls, application: str, version: str, positions: Iterable[Position], **rest: Any
    ) -> DeployRequest:
        """of_players is the request of players at `positions` (the located ones)."""
        return cls(application, version, centre(positions), **rest)


@dataclass(slots=True, eq=False)
class Deployment:
    """Deployment is one request's server, from SEEKING to TERMINATED."""

    request_id: str
    application: str
    version: str
    created_at: float
    status: Status
    location: Location | None = None
    host: PrivateHost | None = None
    tags: tuple[str, ...] = ()
    webhooks: dict[str, str] = field(default_factory=dict)
    last_status: Status | None = None
    error_detail: str = ""
    ready_at: float = math.inf
    removed_at: float | None = None
    stop_requested: bool = False
    port: int = 0
    location_index: int = -1
    deploying_at: float = math.inf
    ends_at: float = math.inf

    @property
    def terminated(self) -> bool:
        return self.status in (Status.TERMINATING, Status.TERMINATED)


# Timed event kind -> (the status it applies to, the status it leads to).
_TRANSITIONS = {
    "end": (Status.READY, Status.TERMINATED),
    "terminated": (Status.TERMINATING, Status.TERMINATED),
    "cleanup": (Status.ERROR, Status.TERMINATED),
}
# Which webhook a new status triggers.
WEBHOOK_EVENTS = {
    Status.READY: "webhook_on_ready",
    Status.ERROR: "webhook_on_error",
    Status.TERMINATED: "webhook_on_terminated",
}


RECENT_LISTS = 256  # host lists remembered by identity (each HTTP request's is new)


@dataclass(slots=True, eq=False)
class HostList:
    """HostList is a host list fleet deploys name (in their order): a heap of the places that
    may have room (a full host leaves it lazily, a freed one comes back), so the first host
    with room is found in log time, not by trying a thousand full ones in turn."""

    ids: tuple[str, ...]
    number: int  # the order the platform first met it in
    heap: list[int]
    place_of: dict[str, int]  # a host's place in the list, 0-based
    first_unknown: int  # the first id the world has no host of (-1: none)


class FleetLog:
    """FleetLog is where each fleet deploy went, a column each (compact: a day's millions):
    its request's host list (`lists[pool]`) and origin, the place in it of the host that took it
    (1-based; 0: the cloud), when, its draws (boot where cached, boot where not, match
    length) and whether the cloud location it went to (or would first: the nearest) has the
    image cached."""

    COLUMNS = (
        "pool", "origin", "place", "at", "cached_boot_s", "boot_s", "lifetime_s", "cloud_cached",
    )  # fmt: skip

    def __init__(self) -> None:
        self.lists: dict[tuple[str, ...], int] = {}
        self._pools: dict[int, int] = {}  # a HostList's number: its pool here
        self.origins: dict[str, int] = {}  # the requests' origins (regions), by index
        self.pool, self.origin, self.place = array("i"), array("i"), array("i")
        self.at, self.cached_boot_s, self.boot_s = array("d"), array("d"), array("d")
        self.lifetime_s, self.cloud_cached = array("d"), array("b")

    def add(self, hosts: HostList, origin: str, place: int, at: float, draws, cached: bool) -> None:
        pool = self._pools.get(hosts.number)
        if pool is None:
            pool = self._pools[hosts.number] = self.lists.setdefault(hosts.ids, len(self.lists))
        self.pool.append(pool)
        self.origin.append(self.origins.setdefault(origin, len(self.origins)))
        self.place.append(place)
        self.at.append(at)
        cached_boot_s, boot_s, lifetime_s = draws
        self.cached_boot_s.append(cached_boot_s)
        self.boot_s.append(boot_s)
        self.lifetime_s.append(lifetime_s)
        self.cloud_cached.append(cached)


class Platform:
    """Platform places deployments on a World and runs their lifecycle.

    >>> from emulator._world import load_world
    >>> platform = Platform(load_world(), seed=1)
    >>> dep = platform.deploy(DeployRequest("my-game", "1.0.0", Position(45.5, -73.6)), now=0)
    >>> dep.status, dep.location.city
    (<Status.SEEKING: 'Status.SEEKING'>, 'Montreal')
    """

    def __init__(self, world: World, seed: int = 0, retain_terminated: int = RETAIN_TERMINATED):
        self.world = world
        self.seed = seed
        self.retain_terminated = retain_terminated
        self._vectors = [loc.position.unit_vector() for loc in world.locations]
        self._capacities = [loc.capacity for loc in world.locations]
        self._min_dot = math.cos(min(world.max_distance_km / EARTH_RADIUS_KM, math.pi))
        self._rankings: dict[tuple[int, int, bool], tuple[int, ...] | Cause] = {}
        self.reset()

    def reset(self) -> None:
        """reset forgets every deployment and re-seeds every random draw."""
        self._rng = random.Random(self.seed)
        lifecycle = self.world.lifecycle
        self._match_draws = tuple(  # a match's own draws: boot where cached, where not, length
            d.sampler(self._rng)
            for d in (lifecycle.cached_boot_s, lifecycle.boot_s, lifecycle.lifetime_s)
        )
        self._id_rng = random.Random(f"ids-{self.seed}")
        self._location_used = [0] * len(self.world.locations)
        self._host_used = dict.fromkeys(self.world.private_hosts, 0)
        # Kept as slots come and go: a reading a second of thousands of hosts adds them up
        # in no time (the private slots held, per city; the hosts changed since last asked).
        self._private_held = 0
        self._city_held: Counter[str] = Counter()
        self._hosts_changed: set[str] = set()
        self._host_lists: dict[tuple[str, ...], HostList] = {}  # by content
        self._recent: dict[int, tuple[tuple[str, ...], HostList]] = {}  # by identity: fast
        self._lists_of: dict[str, list[tuple[list[int], int]]] = {}
        self._deployments: dict[str, Deployment] = {}
        self._active: dict[str, Deployment] = {}
        self._terminated: deque[str] = deque()
        self._events = EventQueue()
        self.failures: Counter[str] = Counter()
        self.fleet_placements: Counter[str] = Counter()  # fleet deploys: "private" or "cloud"
        self.created = 0
        self.outbox: list[tuple[str, Deployment, float]] = []
        # Set to keep every fleet deploy's placement, as a simulation that sizes fleets in
        # one pass asks.
        self.fleet_log: FleetLog | None = None

    # Requests -------------------------------------------------------------

    def deploy(
        self, request: DeployRequest, now: float, hosts: HostList | None = None
    ) -> Deployment:
        """deploy places a request: SEEKING where it fits, ERROR (a 422) where nothing does
        (hosts: its host list's record, where the caller has it: host_list's)."""
        dep = self._new_deployment(request, now)
        self.created += 1
        # The match's own draws, made whatever its placement: a deployment that lands on
        # another host, or on the cloud, leaves every later draw as it was (so one
        # simulation's placements answer for every fleet size: edgebench.advise.onepass).
        cached_boot, boot, lifetime = self._match_draws
        draws = (cached_boot(), boot(), lifetime())
        if request.private_host_ids and hosts is None:
            hosts = self.host_list(request.private_host_ids)
        target, cause = self._place(request, hosts)
        if target is None:  # _place says why whenever it finds no place
            self._fail(dep, cause or Cause.NO_CAPACITY, now)
        else:
            self._start(dep, target, now, draws)
        if request.private_host_ids is not None and cause is None:
            self.fleet_placements["private" if isinstance(target, PrivateHost) else "cloud"] += 1
            if self.fleet_log is not None:
                assert hosts is not None  # a fleet deploy's: looked up above
                self._log_fleet(request, hosts, target, now, draws)
        return dep

    def _log_fleet(
        self, request: DeployRequest, hosts: HostList, target, now: float, draws: tuple
    ) -> None:
        """_log_fleet keeps a fleet deploy's placement: the host's place in the request's
        list (0: the cloud), when, its draws, and whether the cloud location it went to, or
        would go to first (the nearest), has the image cached (how it boots there)."""
        if isinstance(target, PrivateHost):
            place = hosts.place_of[target.id] + 1
            centre = request.centre  # None: players not located, a 422 on the cloud
            ranked = self._ranking(centre, request.require_cached) if centre else ()
            first = ranked[0] if isinstance(ranked, tuple) and ranked else None
        else:
            place, first = 0, target
        cached = first is not None and self.world.locations[first].cached
        assert self.fleet_log is not None
        self.fleet_log.add(hosts, request.origin, place, now, draws, cached)

    def get(self, request_id: str, now: float) -> Deployment | None:
        """get is the deployment as it is at now, or None when unknown."""
        dep = self._deployments.get(request_id)
        if dep is not None:
            self._catch_up(dep, now)
        return dep

    def stop(self, request_id: str, now: float) -> StopOutcome:
        """stop ends a deployment early, as DELETE /v1/stop does."""
        dep = self.get(request_id, now)
        if dep is None:
            return StopOutcome.UNKNOWN
        if dep.terminated:
            return StopOutcome.GONE
        if dep.status in (Status.SEEKING, Status.DEPLOYING):
            if not dep.stop_requested:
                dep.stop_requested = True
                self._schedule(dep, "ready", dep.ready_at)
            return StopOutcome.STOPPING
        self._terminate(dep, now)
        return StopOutcome.STOPPED

    def active(self, now: float, start: int = 0, stop: int | None = None) -> list[Deployment]:
        """active lists the deployments not yet TERMINATED, oldest first, as they are at now."""
        deployments = list(itertools.islice(self._active.values(), start, stop))
        for dep in deployments:
            self._catch_up(dep, now)
        return deployments

    def active_count(self) -> int:
        return len(self._active)

    def active_by_location(self) -> dict[str, int]:
        """active_by_location counts held slots per city, private hosts included."""
        counts: Counter[str] = Counter()
        for loc, used in zip(self.world.locations, self._location_used, strict=True):
            if used:
                counts[loc.city] += used
        counts.update(+self._city_held)
        return dict(counts)

    def holding_count(self) -> int:
        """holding_count is how many slots deployments hold, at locations and private hosts."""
        return sum(self._location_used) + self._private_held

    def active_by_host(self) -> dict[str, int]:
        return {host: used for host, used in self._host_used.items() if used}

    def drain_host_changes(self) -> dict[str, int]:
        """drain_host_changes is each private host's slots held, for the hosts whose count
        changed since the last call (0: idle now), the first call every busy one: a reading
        of a simulation's (records.HostChanges for a live run's)."""
        changed, self._hosts_changed = self._hosts_changed, set()
        return {host: self._host_used[host] for host in changed}

    def drain_outbox(self) -> list[tuple[str, Deployment, float]]:
        """drain_outbox hands over webhook events: (event name, deployment as it was, when)."""
        events, self.outbox = self.outbox, []
        return events

    # Time -----------------------------------------------------------------

    def advance(self, now: float) -> None:
        """advance applies every transition due at or before now, in time order."""
        due_next = self._events.next_due()
        if due_next is None or due_next > now:
            return
        for due, dep, kind in self._events.pop_due(now):
            self._catch_up(dep, due)
            if kind == "ready":
                continue
            expected, new_status = _TRANSITIONS[kind]
            if dep.status is expected:
                self._enter(dep, new_status, due)

    def next_event_at(self) -> float | None:
        return self._events.next_due()

    # Internals ------------------------------------------------------------

    def _new_id(self) -> str:
        while True:
            request_id = "%012x" % self._id_rng.getrandbits(48)  # noqa: UP031 (the faster spelling)
            if request_id not in self._deployments:
                return request_id

    def _place(
        self, request: DeployRequest, hosts: HostList | None = None
    ) -> tuple[PrivateHost | int | None, Cause | None]:
        """_place picks a private host, or the index of a location, or says why neither."""
        if request.private_host_ids:
            host = self._first_with_room(hosts or self.host_list(request.private_host_ids))
            if host is not None:
                return host, None
        players = request.centre
        if players is None:
            return None, Cause.UNLOCATABLE_USERS
        return self._nearest_free_location(players, request.require_cached)

    def host_list(self, ids: tuple[str, ...]) -> HostList:
        """host_list is the platform's record of a host list: met once by its content, then
        by the very tuple (a simulation's requests share theirs: no hashing of thousands of
        ids a request)."""
        recent = self._recent.get(id(ids))
        if recent is not None and recent[0] is ids:
            return recent[1]
        hosts = self._host_lists.get(ids)
        if hosts is None:
            known = self.world.private_hosts
            unknown = next((i for i, host in enumerate(ids) if host not in known), -1)
            heap = list(range(len(ids)))  # sorted: a heap already
            hosts = HostList(ids, len(self._host_lists), heap, {}, unknown)
            hosts.place_of = {host: place for place, host in enumerate(ids)}
            self._host_lists[ids] = hosts
            for place, host_id in enumerate(ids):
                self._lists_of.setdefault(host_id, []).append((heap, place))
        if len(self._recent) > RECENT_LISTS:  # each HTTP request parses a tuple of its own
            self._recent.clear()
        self._recent[id(ids)] = (ids, hosts)
        return hosts

    def _first_with_room(self, listed: HostList) -> PrivateHost | None:
        """_first_with_room is the first host of the list (in its order) that is ACTIVE and
        has a free slot: ordered hunting, as Edgegap tries a fleet deploy's hosts."""
        heap, ids = listed.heap, listed.ids
        hosts, used = self.world.private_hosts, self._host_used
        while heap:
            host = hosts[ids[heap[0]]]
            if host.active and used[host.id] < host.capacity:
                return host
            heapq.heappop(heap)  # full (or PENDING): back when a slot frees
        return None

    def _nearest_free_location(
        self, players: Position, cached_only: bool
    ) -> tuple[int | None, Cause | None]:
        ranked = self._ranking(players, cached_only)
        if isinstance(ranked, Cause):
            return None, ranked
        used, capacities = self._location_used, self._capacities
        for i in ranked:
            if used[i] < capacities[i]:
                return i, None
        return None, Cause.NO_CAPACITY

    def _ranking(self, players: Position, cached_only: bool) -> tuple[int, ...] | Cause:
        """_ranking lists the locations in range of the players' grid cell, nearest first."""
        key = (
            round(players.latitude * GRID_PER_DEGREE),
            round(players.longitude * GRID_PER_DEGREE),
            cached_only,
        )
        ranked = self._rankings.get(key)
        if ranked is None:
            if len(self._rankings) >= RANKING_CACHE_SIZE:
                self._rankings.clear()
            cell = Position(key[0] / GRID_PER_DEGREE, key[1] / GRID_PER_DEGREE)
            ranked = self._rankings[key] = self._rank(cell, cached_only)
        return ranked

    def _rank(self, cell: Position, cached_only: bool) -> tuple[int, ...] | Cause:
        px, py, pz = cell.unit_vector()
        dots = [(x * px + y * py + z * pz, i) for i, (x, y, z) in enumerate(self._vectors)]
        in_range = [(dot, i) for dot, i in dots if dot >= self._min_dot]
        if not in_range:
            return Cause.OUT_OF_RANGE
        if cached_only:
            in_range = [(dot, i) for dot, i in in_range if self.world.locations[i].cached]
            if not in_range:
                return Cause.NO_CACHED_LOCATION
        return tuple(i for _, i in sorted(in_range, reverse=True))

    def _start(self, dep: Deployment, target: PrivateHost | int, now: float, draws) -> None:
        cached_boot_s, boot_s, lifetime_s = draws
        self._occupy(dep, target)
        # Private hosts keep the fleet's image: they boot like cached locations.
        cached = dep.host is not None or (dep.location is not None and dep.location.cached)
        boot_s = cached_boot_s if cached else boot_s
        dep.deploying_at = now + SEEK_SHARE_OF_BOOT * boot_s
        dep.ready_at = now + boot_s
        dep.ends_at = dep.ready_at + lifetime_s
        self._schedule(dep, "end", dep.ends_at)
        if "webhook_on_ready" in dep.webhooks:
            self._schedule(dep, "ready", dep.ready_at)

    def preload(self, request: DeployRequest, remaining_s: float, now: float) -> bool:
        """preload places a deployment that was already running at now (a warm start): READY
        where it fits, ending remaining_s later; nowhere (False) where nothing fits. It is
        the past: neither created, nor a failure, nor a fleet placement of the run's."""
        target, _ = self._place(request)
        if target is None:
            return False
        dep = self._new_deployment(request, now)
        self._occupy(dep, target)
        dep.deploying_at = dep.ready_at = now
        dep.ends_at = now + remaining_s
        self._schedule(dep, "end", dep.ends_at)
        self._catch_up(dep, now)
        return True

    def _new_deployment(self, request: DeployRequest, now: float) -> Deployment:
        """_new_deployment is a SEEKING deployment of the request, known from now on."""
        dep = Deployment(
            request_id=self._new_id(),
            application=request.application,
            version=request.version,
            created_at=now,
            status=Status.SEEKING,
            tags=request.tags,
            webhooks=request.webhooks,
            port=30000 + int(self._rng.random() * 30000),  # randrange is several times slower
        )
        self._deployments[dep.request_id] = dep
        self._active[dep.request_id] = dep
        return dep

    def _occupy(self, dep: Deployment, target: PrivateHost | int) -> None:
        """_occupy takes a slot of the private host or of the location (an index)."""
        if isinstance(target, PrivateHost):
            dep.host, dep.location = target, target.location
            self._host_used[target.id] += 1
            self._private_held += 1
            self._city_held[target.location.city] += 1
            self._hosts_changed.add(target.id)
        else:
            dep.location, dep.location_index = self.world.locations[target], target
            self._location_used[target] += 1

    def _catch_up(self, dep: Deployment, now: float) -> None:
        """_catch_up applies the untimed steps SEEKING -> DEPLOYING -> READY due by now."""
        if dep.status is Status.SEEKING and now >= dep.deploying_at:
            self._set_status(dep, Status.DEPLOYING, dep.deploying_at)
        if dep.status is Status.DEPLOYING and now >= dep.ready_at:
            self._enter(dep, Status.READY, dep.ready_at)

    def _fail(self, dep: Deployment, cause: Cause, now: float) -> None:
        self.failures[cause.value] += 1
        dep.error_detail = cause.value
        self._enter(dep, Status.ERROR, now)

    def _enter(self, dep: Deployment, status: Status, now: float) -> None:
        self._set_status(dep, status, now)
        if status is Status.READY and dep.stop_requested:
            self._terminate(dep, now)
        elif status is Status.ERROR:
            self._schedule(dep, "cleanup", now + self.world.lifecycle.error_retention_s)
        elif status is Status.TERMINATED:
            self._release(dep, now)

    def _terminate(self, dep: Deployment, now: float) -> None:
        """_terminate starts a stop: TERMINATING now, TERMINATED after terminate_s."""
        self._set_status(dep, Status.TERMINATING, now)
        self._schedule(dep, "terminated", now + self._draw(self.world.lifecycle.terminate_s))

    def _set_status(self, dep: Deployment, status: Status, now: float) -> None:
        dep.last_status, dep.status = dep.status, status
        if dep.webhooks:  # most deployments ask for none
            event = WEBHOOK_EVENTS.get(status)
            if event and event in dep.webhooks:
                self.outbox.append((event, copy.copy(dep), now))

    def _release(self, dep: Deployment, now: float) -> None:
        dep.removed_at = now
        if dep.host is not None:
            used = self._host_used[dep.host.id] = self._host_used[dep.host.id] - 1
            if used == dep.host.capacity - 1:  # it was full: back
                for heap, place in self._lists_of.get(dep.host.id, ()):
                    heapq.heappush(heap, place)
            self._private_held -= 1
            self._city_held[dep.host.location.city] -= 1
            self._hosts_changed.add(dep.host.id)
        elif dep.location_index >= 0:
            self._location_used[dep.location_index] -= 1
        self._active.pop(dep.request_id, None)
        self._terminated.append(dep.request_id)
        while len(self._terminated) > self.retain_terminated:
            self._deployments.pop(self._terminated.popleft(), None)

    def _schedule(self, dep: Deployment, kind: str, due: float) -> None:
        self._events.push(due, (due, dep, kind))

    def _draw(self, distribution) -> float:
        return distribution.sample(self._rng)
