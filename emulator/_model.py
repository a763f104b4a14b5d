"""The emulator's answer to a request, without HTTP: what the app and the simulator share.

Every request meets, in this order (ApiModel.admit): an injected fault (a delay, a 500,
a dropped connection) -> auth (401) -> the organisation's rate limit (429). A deploy
then meets (ApiModel.deploy) the body's check (400) -> placement (202, or 422 when no
location can take it) -> an injected lost answer (created, then the connection closes).
The HTTP app reads the bytes and writes the answer; `edgebench simulate` calls the same
ApiModel.deploy with a virtual clock. A change to the order or the capacity model
changes both.

    model = ApiModel(EmulatorConfig(seed=1), clock=lambda: now)   # clock: wall seconds
    delay, fault = model.fault()                                   # the caller waits `delay`
    answer = model.deploy(fault, "token", DEPLOY_GROUP, lambda: parse_deploy(body), clock)
    answer.status                                                  # 202, 400, 401, 422, 429...
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from emulator._errors import ConfigError
from emulator._faults import Faults, draw_fault
from emulator._platform import Deployment, DeployRequest, Platform, Status
from emulator._ratelimit import RateLimiter, RateLimits
from emulator._validation import BadRequest, _user
from emulator._world import World, load_world
from geo import Position

ALLOCATION_FAILED = "Couldn't Allocate Server"
DEFAULT_ORGANISATION = "default"
INVALID_APPLICATION = "Invalid Application or Application Version"
UNKNOWN_HOST = "Invalid request: unknown private host"
NO_ANSWER = 0  # the connection closed without an answer: dropped, or the answer lost


@dataclass(frozen=True)
class EmulatorConfig:
    """EmulatorConfig is everything an emulator instance is built from.

    EmulatorConfig(time_scale=60)  # a platform minute per wall second
    """

    world: World = field(default_factory=load_world)
    seed: int = 0
    time_scale: float = 1.0
    rate_limits: RateLimits = field(default_factory=RateLimits)
    accepted_tokens: frozenset[str] | None = None
    # token -> organisation: the rate limits are an organisation's, shared by its tokens.
    # A token it does not name belongs to DEFAULT_ORGANISATION (by default, all of them).
    organisations: dict[str, str] = field(default_factory=dict)
    faults: Faults = field(default_factory=Faults)
    max_body_bytes: int = 64 * 1024
    webhook_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if not self.time_scale > 0:
            raise ConfigError("time_scale", "must be above 0", "e.g. 1 (real time) or 60")
        if self.max_body_bytes <= 0:
            raise ConfigError("max_body_bytes", "must be above 0", "e.g. 65536")


class Answer(NamedTuple):
    """Answer is the model's reply: a status (NO_ANSWER: the connection closed), the
    deployment it created (202, 422, and a lost answer's), what the body says."""

    status: int
    deployment: Deployment | None = None
    message: str | None = None
    details: dict[str, str] | None = None  # a 400's offending field and why; a 401's header
    retry_after: int | None = None  # a 429's seconds


class ApiModel:
    """ApiModel holds the platform, the rate limits and the fault draws of one emulator."""

    def __init__(self, config: EmulatorConfig, clock: Callable[[], float] = time.monotonic):
        self.config = config
        self.platform = Platform(config.world, seed=config.seed)
        shape = config.world.limiter
        self.limiter = RateLimiter(config.rate_limits, clock, shape.algorithm, shape.burst)
        self.faults = config.faults
        self.reset()

    def reset(self) -> None:
        """reset forgets every deployment, limiter window and draw (the faults stay as set)."""
        self.platform.reset()
        self.limiter.reset()
        self._fault_rng = random.Random(f"faults-{self.config.seed}")

    def fault(self) -> tuple[float, str | None]:
        """fault is (extra delay in seconds, "error" | "drop" | "lost" | None) for the next
        request: a 500, a connection closed unanswered, an answer lost after the work."""
        delay, fault = (
            draw_fault(self.faults, self._fault_rng) if self.faults.active else (0.0, None)
        )
        api = self.config.world.api_latency_ms  # the world's own latency, faults or not
        if api is not None:
            delay += api.sample(self._fault_rng) / 1000
        return delay, fault

    def admit(self, fault: str | None, token: str | None, group: str) -> Answer | None:
        """admit is the answer that stops a request before its route's work (None: none does):
        the injected fault, then auth, then the organisation's limit for the group."""
        if fault == "error":
            return Answer(500, message="Internal Server Error (injected fault)")
        if fault == "drop":
            return Answer(NO_ANSWER)
        if token is None:
            header = {"header": "Authorization: token <value>"}
            return Answer(401, message="Unauthorized - Missing Token", details=header)
        if self.config.accepted_tokens is not None and token not in self.config.accepted_tokens:
            return Answer(401, message="Unauthorized - Invalid Token")
        retry_after = self.limited(token, group)
        if retry_after is not None:
            return Answer(429, message="Too Many Requests", retry_after=retry_after)
        return None

    def deploy(
        self,
        fault: str | None,
        token: str | None,
        group: str,
        read: Callable[[], DeployRequest],
        now: Callable[[], float],
    ) -> Answer:
        """deploy is a deploy's whole answer, in the API's order (the module's docstring).

        read gives the checked body (raising BadRequest: a 400), called only once the
        request is admitted; now brings the platform to the present and gives its time.
        """
        refused = self.admit(fault, token, group)
        if refused is not None:
            return refused
        try:
            request = read()
        except BadRequest as exc:
            details = {"field": exc.field, "reason": exc.reason}
            return Answer(400, message=f"Invalid request: {exc}", details=details)
        answer = self.create(request, now())
        if fault == "lost":  # created, and the answer never reaches the client
            return answer._replace(status=NO_ANSWER)
        return answer

    def preload(self, running: list[Preloaded], now: float) -> int:
        """preload starts the platform warm: each a deployment already running at now, with
        what is left of its match: given its age, the lifetime past that age; else drawn
        from the lifetime's equilibrium (a match caught at a random moment). It is how many
        found a place."""
        # A fleet deploy naming a host the world has not is a 400: it holds nothing.
        platform = self.platform
        running = [
            p
            for p in running
            if not p.request.private_host_ids
            or platform.host_list(p.request.private_host_ids).first_unknown < 0
        ]
        lifetime = self.config.world.lifecycle.lifetime_s
        rng = random.Random(f"warm-{self.config.seed}")
        self.platform.advance(now)
        placed = [
            self.platform.preload(
                p.request,
                lifetime.residual(rng) if p.age_s is None else lifetime.remaining(rng, p.age_s),
                now,
            )
            for p in running
        ]
        return sum(placed)

    def limited(self, token: str, group: str) -> int | None:
        """limited is None when the request is within its organisation's limit for its group,
        else Retry-After: Edgegap limits an organisation, whichever of its tokens is used."""
        organisation = self.config.organisations.get(token, DEFAULT_ORGANISATION)
        return self.limiter.check(organisation, group)

    def create(self, request: DeployRequest, now: float) -> Answer:
        """create places a checked deploy at platform time now."""
        hosts = None
        if request.private_host_ids:
            hosts = self.platform.host_list(request.private_host_ids)
            i = hosts.first_unknown
            if i >= 0:
                details = {"field": f"private_host_ids[{i}]", "reason": "unknown host"}
                return Answer(400, None, UNKNOWN_HOST, details)
        if not self.config.world.knows(request.application, request.version):
            details = {"field": "application", "reason": "not registered"}
            return Answer(400, None, INVALID_APPLICATION, details)
        dep = self.platform.deploy(request, now, hosts)
        if dep.status is Status.ERROR:
            return Answer(422, dep, f"{ALLOCATION_FAILED}: {dep.error_detail}")
        return Answer(202, dep)


class Preloaded(NamedTuple):
    """Preloaded is a deployment a warm start finds running, and how long its match has run
    (None: not known, a match caught at a random moment)."""

    request: DeployRequest
    age_s: float | None = None


def parse_preload(body: object) -> list[Preloaded]:
    """parse_preload reads `POST /_emulator/preload`'s body: the deployments a warm start
    finds running (raises BadRequest, a 400, naming the field).

    {"application": "my-game", "version": "1.0.0", "private_host_ids": ["h1"],
     "deployments": [{"centre": [48.8, 2.3], "fleet": false, "cached": false,
                      "age_s": 300.0}, ...]}

    A deployment's "fleet" is false, true (the body's private_host_ids), its own host ids,
    or the name of a list in the body's "fleets" ({"europe": ["h1", ...]}: a long list
    written once); "age_s", when given, how long its match has run (platform seconds).
    """
    if not isinstance(body, dict):
        raise BadRequest("body", "must be a JSON object")
    application, version = body.get("application"), body.get("version")
    if not isinstance(application, str) or not isinstance(version, str):
        raise BadRequest("application", "application and version must be strings")
    hosts = body.get("private_host_ids") or []
    items = body.get("deployments")
    if not isinstance(items, list) or not isinstance(hosts, list):
        raise BadRequest("deployments", "must be a list (and private_host_ids too)")
    fleets = body.get("fleets") or {}
    if not isinstance(fleets, dict) or not all(isinstance(v, list) for v in fleets.values()):
        raise BadRequest("fleets", "must map names to lists of host ids")
    named = {name: tuple(ids) for name, ids in fleets.items()}  # one tuple a list: shared
    return [
        _preloaded(application, version, tuple(hosts), named, item, i)
        for i, item in enumerate(items)
    ]


def _preloaded(
    application: str,
    version: str,
    hosts: tuple[str, ...],
    named: dict[str, tuple[str, ...]],
    item: object,
    i: int,
) -> Preloaded:
    if not isinstance(item, dict):
        raise BadRequest(f"deployments[{i}]", "must be a JSON object")
    centre = item.get("centre")
    try:
        position = None if centre is None else Position(float(centre[0]), float(centre[1]))
    except (TypeError, ValueError, IndexError):
        raise BadRequest(f"deployments[{i}].centre", "must be [latitude, longitude]") from None
    fleet = item.get("fleet")
    if isinstance(fleet, str):
        if fleet not in named:
            raise BadRequest(f"deployments[{i}].fleet", f"no list {fleet!r} in fleets")
        hosts = named[fleet]
    elif isinstance(fleet, list):
        if not all(isinstance(host, str) for host in fleet):
            raise BadRequest(f"deployments[{i}].fleet", "must list host ids (strings)")
        hosts = tuple(fleet)
    age = item.get("age_s")
    if age is not None and (
        isinstance(age, bool) or not isinstance(age, int | float) or not 0 <= age < math.inf
    ):
        raise BadRequest(f"deployments[{i}].age_s", "must be a number of seconds, 0 or more")
    request = DeployRequest(
        application,
        version,
        position,
        require_cached=bool(item.get("cached")),
        private_host_ids=hosts if fleet and hosts else None,
    )
    return Preloaded(request, None if age is None else float(age))


def locate_user(user: object) -> Position | None:
    """locate_user is where the emulator places one `users[]` item (None: an unknown IP).

    Raises BadRequest as the API would answer 400 for it.
    """
    return _user(user, 0)
