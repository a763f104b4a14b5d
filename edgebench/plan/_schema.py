"""The scenario's schema: every table and key of a scenario file, checked by pydantic.

The keys are documented in scenarios/README.md; edgebench.plan.scenario is the public face.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SkipValidation,
    field_validator,
    model_validator,
)

from checks import ThresholdError, Watch, split_thresholds
from edgebench.plan.replay import ReplayMatch
from edgebench.plan.times import parse_duration, parse_time
from geo import country_alpha3, country_positions

if TYPE_CHECKING:
    from edgebench.plan.client import ClientPolicy

DEFAULT_LIMIT = 40
Seconds = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]
Fraction = Annotated[float, Field(ge=0, le=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Target(_Strict):
    """Target says what to deploy and where: no host means the embedded emulator."""

    application: str = Field(min_length=1)
    version: str = Field(min_length=1)
    host: str | None = None
    world: str | None = None


class Mix(_Strict):
    """Mix weighs deploy against fleet-deploy requests."""

    deploy: Annotated[float, Field(ge=0)] = 1.0
    fleet_deploy: Annotated[float, Field(ge=0)] = 0.0
    private_host_ids: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _weights_and_hosts(self) -> Mix:
        if self.deploy + self.fleet_deploy <= 0:
            raise ValueError("deploy + fleet_deploy is 0; give one of them a weight above 0")
        if len(set(self.private_host_ids)) != len(self.private_host_ids):
            raise ValueError("private_host_ids repeats an id; list each host once")
        return self

    @property
    def shares(self) -> tuple[float, float]:
        """shares is (deploy, fleet deploy) as fractions of all requests."""
        total = self.deploy + self.fleet_deploy
        return self.deploy / total, self.fleet_deploy / total


class City(_Strict):
    name: str = Field(min_length=1)
    country: str
    latitude: Annotated[float, Field(ge=-90, le=90)]
    longitude: Annotated[float, Field(ge=-180, le=180)]

    _country = field_validator("country")(lambda cls, code: _country_code(code))


class Region(_Strict):
    """Region is a weighted source of players: countries (for IPs) and/or cities."""

    name: str = Field(min_length=1)
    weight: Annotated[float, Field(ge=0)] = 1.0
    countries: list[str] = Field(default_factory=list)
    cities: list[City] = Field(default_factory=list)
    jitter_km: Annotated[float, Field(ge=0, le=2000)] = 25.0
    ip_share: Fraction = 0.5
    # The region's own private hosts, tried in order for its fleet deploys (then the cloud):
    # listed, or every host of a fleet of the world (resolved when the scenario is loaded).
    private_host_ids: list[str] = Field(default_factory=list)
    private_fleet: str | None = Field(default=None, min_length=1)
    fleet_hosts: SkipValidation[list[str]] = []  # private_fleet's hosts, once resolved

    @field_validator("countries")
    @classmethod
    def _countries(cls, codes: list[str]) -> list[str]:
        return [_country_code(code) for code in codes]

    @model_validator(mode="after")
    def _has_players(self) -> Region:
        if not self.countries and not self.cities:
            raise ValueError("a region needs countries or cities; add one of them")
        if self.private_fleet and self.private_host_ids:
            raise ValueError(
                "give private_host_ids or private_fleet, not both; keep the one you mean"
            )
        if len(set(self.private_host_ids)) != len(self.private_host_ids):
            raise ValueError("private_host_ids repeats an id; list each host once")
        return self

    @property
    def has_fleet(self) -> bool:
        return bool(self.private_fleet or self.private_host_ids)

    @property
    def hosts(self) -> list[str]:
        """hosts are the private hosts the region's fleet deploys name, in order (not a
        copy: a fleet may have thousands)."""
        return self.private_host_ids or self.fleet_hosts


class Players(_Strict):
    """Players per request: sizes with weights (party or match sizes), from each region's
    population of distinct players."""

    sizes: list[Annotated[int, Field(ge=1, le=100)]] = Field(default_factory=lambda: [1])
    weights: list[Annotated[float, Field(ge=0)]] | None = None
    population: Annotated[int, Field(ge=1, le=1_000_000)] = 10_000

    @model_validator(mode="after")
    def _weights(self) -> Players:
        if not self.sizes:
            raise ValueError("sizes is empty; list at least one party size")
        if self.population < max(self.sizes):
            raise ValueError(
                f"population {self.population} is smaller than the largest party; "
                f"give population at least {max(self.sizes)}"
            )
        if self.weights is not None:
            if len(self.weights) != len(self.sizes):
                raise ValueError("weights and sizes differ in length; give one weight a size")
            if sum(self.weights) <= 0:
                raise ValueError("weights sum to 0; give a size a weight above 0")
        return self


class EnvironmentVariable(_Strict):
    key: str = Field(min_length=1)
    value: str
    is_hidden: bool = False


class Requests(_Strict):
    """Requests holds what each body carries besides the players."""

    require_cached_share: Fraction = 0.0
    tags: list[str] = Field(default_factory=list)
    environment_variables: list[EnvironmentVariable] = Field(default_factory=list)
    webhooks: bool = False
    webhook_public_url: str | None = None
    webhook_port: Annotated[int, Field(ge=1, le=65535)] = 8790
    poll_status: bool = False
    poll_interval: Seconds = 2.0
    status_limit: Annotated[int, Field(ge=1)] = 20

    @field_validator("webhook_public_url")
    @classmethod
    def _public_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{url!r} is not an http(s) URL; give e.g. https://hooks.example.com")
        return url.rstrip("/")


class Stage(_Strict):
    """Stage is a stretch of the schedule: ramp to a rate, or step/spike/hold at one."""

    kind: Literal["ramp", "step", "spike", "hold"]
    duration: Seconds
    rate: Annotated[float, Field(ge=0)]

    @property
    def duration_s(self) -> float:
        return self.duration


class Rate(_Strict):
    """Rate: respect the limit (never more than `limit` starts in any second) or exceed it."""

    mode: Literal["respect", "exceed"] = "respect"
    limit: Annotated[int, Field(ge=1)] = DEFAULT_LIMIT
    factor: Annotated[float, Field(gt=0)] = 1.0
    margin_ms: Annotated[float, Field(ge=0, le=500)] = 15.0
    arrivals: Literal["uniform", "poisson", "tick", "replay"] = "uniform"
    tick: Seconds = 5.0  # arrivals = "tick": how often the matchmaker releases its matches
    replay_file: str | None = None  # arrivals = "replay": the match log, JSON lines or CSV
    speed: Annotated[float, Field(gt=0)] = 1.0  # arrivals = "replay": x real time
    stages: list[Stage] = Field(default_factory=list)  # none: the [demand] forecast's rate

    @model_validator(mode="after")
    def _some_traffic(self) -> Rate:
        if self.stages and all(stage.rate == 0 for stage in self.stages):
            raise ValueError("every stage has rate 0; give a stage a rate above 0")
        return self


Wait = Annotated[float, BeforeValidator(parse_duration), Field(ge=0)]


class Client(_Strict):
    """Client is what the studio's backend does with a match (edgebench.plan.client)."""

    preset: Literal["naive", "edgegap-sdk", "edgegap-matchmaker"] = "naive"
    queue: bool | None = None
    max_queue_wait: Seconds | None = None
    retry_on: list[Literal["429", "5xx", "transport", "422"]] | None = None
    attempts: Annotated[int, Field(ge=1, le=10)] | None = None
    backoff: Literal["fixed", "exponential"] | None = None
    backoff_base: Wait | None = None
    backoff_max: Wait | None = None
    jitter: Wait | None = None
    retry_after: bool | None = None
    timeout: Seconds | None = None

    def policy(self) -> ClientPolicy:
        """policy is the preset with this table's keys over it."""
        from edgebench.plan.client import ClientPolicy

        return ClientPolicy.preset(self.preset).with_keys(
            queue=self.queue,
            max_queue_wait_s=self.max_queue_wait,
            retry_on=tuple(self.retry_on) if self.retry_on is not None else None,
            attempts=self.attempts,
            backoff=self.backoff,
            backoff_base_s=self.backoff_base,
            backoff_max_s=self.backoff_max,
            jitter_s=self.jitter,
            retry_after=self.retry_after,
            timeout_s=self.timeout,
        )


Price = Annotated[float, Field(ge=0)]
HOURS_PER_MONTH = 730.0  # what cloud providers bill a month of a host as (365 x 24 / 12)


class HostPrice(_Strict):
    """HostPrice is what one private host of a fleet costs: per month or per hour."""

    per_month: Price | None = None
    per_hour: Price | None = None

    @model_validator(mode="after")
    def _one_price(self) -> HostPrice:
        if (self.per_month is None) == (self.per_hour is None):
            raise ValueError("give per_month or per_hour (one of them); e.g. { per_month = 450 }")
        return self

    @property
    def hourly(self) -> float:
        return (
            self.per_hour
            if self.per_hour is not None
            else (self.per_month or 0.0) / HOURS_PER_MONTH
        )


class Costs(_Strict):
    """Costs are the prices a run's cost is worked out from: none are built in."""

    currency: str = Field(default="USD", min_length=1)
    note: str = ""  # shown with every cost (the shipped example's: "example prices")
    cloud_vcpu_hour: Price = 0.0  # Edgegap's cloud, per vCPU-hour a deployment reserves
    cloud_gb_hour: Price = 0.0  # per GB-hour of memory it reserves
    egress_player_hour: Price = 0.0  # per player-hour of a match, wherever it runs
    private: dict[str, HostPrice] = Field(default_factory=dict)  # fleet name -> a host's price


class MatchLength(_Strict):
    """MatchLength is a lognormal match length: its median and spread (sigma 0: fixed)."""

    median: Seconds
    sigma: Annotated[float, Field(ge=0, le=3)] = 0.0

    @property
    def mean_s(self) -> float:
        return self.median * math.exp(self.sigma**2 / 2)


def _iso_origin(points: list[object]) -> str | None:
    """_iso_origin is the first ISO 8601 time among [time, players] points (None: none)."""
    for point in points:
        if isinstance(point, list) and point and isinstance(point[0], str):
            try:
                _, origin = parse_time(point[0])
            except ValueError:
                continue
            if origin is not None:
                return origin.isoformat()
    return None


def _forecast_points(value: object) -> list[tuple[float, float]]:
    """_forecast_points reads [[time, players], ...] (time: seconds, "2h" or ISO 8601)."""
    if not isinstance(value, list):
        raise ValueError('must be a list of [time, players] pairs, e.g. [["0m", 0], ["1h", 5000]]')
    points: list[tuple[float, float]] = []
    origin = None
    for point in value:
        if not (isinstance(point, list) and len(point) == 2):
            raise ValueError(f'{point!r} is not a [time, players] pair; e.g. ["1h", 5000]')
        t, origin = parse_time(point[0], origin)
        if isinstance(point[1], bool) or not isinstance(point[1], int | float) or point[1] < 0:
            raise ValueError(f"{point[1]!r} is not a count of players; use 0 or more")
        if points and t <= points[-1][0]:
            raise ValueError(
                f"{point[0]} is not after {value[len(points) - 1][0]}; times must increase"
            )
        points.append((t, float(point[1])))
    if len(points) == 1:
        raise ValueError("one point: a forecast needs at least two (its start and its end)")
    return points


class Demand(_Strict):
    """Demand is a launch forecast: concurrent players over time, and how they play.

    The deploy rate follows by Little's law (edgebench.plan.forecast).
    """

    ccu: Annotated[list[tuple[float, float]], BeforeValidator(_forecast_points)] = Field(
        default_factory=list
    )
    ccu_file: str | None = None
    region_ccu: dict[str, list[float]] = Field(default_factory=dict)  # from the CSV's columns
    share_in_matches: Fraction = 1.0
    match_length: Seconds | MatchLength
    window: list[Annotated[float, BeforeValidator(parse_duration)]] | None = None
    origin: str | None = None  # ISO time of forecast time 0, when the points gave ISO times

    @model_validator(mode="before")
    @classmethod
    def _clock(cls, data: object) -> object:
        """_clock keeps the clock time of the points' first ISO time (forecast time 0)."""
        if isinstance(data, dict) and isinstance(data.get("ccu"), list) and "origin" not in data:
            data = {**data, "origin": _iso_origin(data["ccu"])}
        return data

    @model_validator(mode="after")
    def _points(self) -> Demand:
        if bool(self.ccu) == bool(self.ccu_file):
            raise ValueError("give either ccu = [[time, players], ...] or ccu_file, not both")
        if self.window is not None and (
            len(self.window) != 2 or not self.window[0] < self.window[1]
        ):
            raise ValueError('window must be [start, end] with start < end, e.g. ["2h", "3h"]')
        return self

    def lifetime(self) -> dict[str, Any]:
        """lifetime is how long a match holds its server, as a distribution table in the
        worlds' grammar (`lifecycle.lifetime_s`): what the embedded emulator and the
        simulator hold each deployment for."""
        length = self.match_length
        if isinstance(length, MatchLength) and length.sigma > 0:
            return {"distribution": "lognormal", "median": length.median, "sigma": length.sigma}
        seconds = length.median if isinstance(length, MatchLength) else length
        return {"distribution": "fixed", "value": float(seconds)}

    @property
    def mean_match_length_s(self) -> float:
        length = self.match_length
        return length.mean_s if isinstance(length, MatchLength) else float(length)


class Scenario(_Strict):
    """Scenario is one validated scenario file."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9._-]+$")
    description: str = ""
    seed: int = 0
    duration: Seconds | None = None
    target: Target
    mix: Mix = Field(default_factory=Mix)
    players: Players = Field(default_factory=Players)
    requests: Requests = Field(default_factory=Requests)
    rate: Rate
    client: Client | None = None
    demand: Demand | None = None
    regions: list[Region] = Field(default_factory=list)
    # arrivals = "replay": the log's matches, once loaded
    replay: SkipValidation[tuple[ReplayMatch, ...]] = ()
    costs: Costs | None = None  # [costs], or --costs FILE: cost appears only when given
    thresholds: list[str] = Field(default_factory=list)  # judged once the run is over
    watches: SkipValidation[tuple[Watch, ...]] = ()  # judged live (checks.Watch)
    source: str = ""
    digest: str = ""  # sha256 of the scenario file
    # sha256 of the scenario file and of every file it reads (forecast, replay log), in
    # that order: what every process of a distributed run must have the same of.
    inputs_digest: str = ""
    warnings: SkipValidation[tuple[str, ...]] = ()  # said by check, run and simulate

    @model_validator(mode="before")
    @classmethod
    def _watched_apart(cls, data: object) -> object:
        """_watched_apart moves the watched checks out of `thresholds` into `watches`."""
        if not isinstance(data, dict) or not isinstance(data.get("thresholds"), list):
            return data
        try:
            checks, watches = split_thresholds(data["thresholds"])
        except ThresholdError as exc:
            raise ValueError(f"thresholds: {exc}") from None
        watched = (*data.get("watches", ()), *watches)  # a check again: its watches kept
        return data | {"thresholds": checks, "watches": watched}

    @model_validator(mode="after")
    def _regions_weigh_something(self) -> Scenario:
        replaying = self.rate.arrivals == "replay"
        if not replaying and not self.regions:
            raise ValueError("no [[regions]]; add one (the players' countries and cities)")
        if not replaying and sum(region.weight for region in self.regions) <= 0:
            raise ValueError("region weights sum to 0; give a region a weight above 0")
        if [bool(self.rate.stages), bool(self.demand), replaying].count(True) != 1:
            raise ValueError(
                'give one of [rate] stages, a [demand] forecast, or arrivals = "replay" '
                "with a replay_file; see scenarios/README.md"
            )
        if replaying and not self.rate.replay_file:
            raise ValueError('arrivals = "replay" needs rate.replay_file; name the match log')
        self._fleets_named()
        return self

    def _fleets_named(self) -> None:
        """_fleets_named: every fleet deploy has hosts to name, and a region's fleet is used."""
        mix = self.mix
        replaying = self.rate.arrivals == "replay"
        fleets = any(region.has_fleet for region in self.regions)
        if mix.fleet_deploy > 0 and not mix.private_host_ids and not fleets and not replaying:
            raise ValueError(
                "mix.fleet_deploy needs private_host_ids (or a region's private_host_ids or "
                "private_fleet; a region with none deploys to the cloud directly); list the "
                "fleet's host ids"
            )
        if mix.fleet_deploy == 0 and any(region.has_fleet for region in self.regions):
            raise ValueError(
                "a region names private hosts but mix.fleet_deploy is 0; set [mix] "
                "fleet_deploy = 1 (and deploy = 0) to send its matches to its fleet"
            )

    def fleet_host_ids(self, region: str) -> list[str]:
        """fleet_host_ids is what a fleet deploy of the region names: its own hosts, else the
        mix's (a private_fleet resolved into ids when the scenario was loaded)."""
        for each in self.regions:
            if each.name == region and each.hosts:
                return each.hosts
        return self.mix.private_host_ids

    @property
    def duration_s(self) -> float:
        """duration_s is the run's length: `duration`, else the stages' or the forecast's."""
        if self.duration:
            return float(self.duration)
        if self.replay:
            return math.ceil(self.replay[-1].t_s / self.rate.speed) + 1.0
        if self.demand:
            times = self.demand.window or [t for t, _ in self.demand.ccu]
            return times[-1] - times[0]
        return sum(stage.duration_s for stage in self.rate.stages)

    @property
    def match_lifetime(self) -> dict[str, Any] | None:
        """match_lifetime is Demand.lifetime (None: the scenario says nothing of its matches)."""
        return self.demand.lifetime() if self.demand else None

    def lifetime_warning(self, world_lifetime: dict[str, Any], world: str) -> str | None:
        """lifetime_warning names a world whose lifetime_s is not the scenario's match length:
        the scenario's is the one the embedded emulator and the simulator use."""
        wanted = self.match_lifetime
        if wanted is None or _same_table(wanted, world_lifetime):
            return None
        return (
            f"{world}: lifecycle.lifetime_s ({_table_text(world_lifetime)}) is not "
            f"{self.source}'s demand.match_length ({_table_text(wanted)}): the scenario's is "
            "used on the embedded emulator and in the simulator (the real API's matches last "
            "as long as the game server runs them)"
        )

    @property
    def client_policy(self) -> ClientPolicy | None:
        """client_policy is the resolved [client] (None: none given, each match one request)."""
        return self.client.policy() if self.client else None

    @property
    def queues(self) -> bool:
        """queues is whether matches wait for the limiter in the client, not in the schedule."""
        policy = self.client_policy
        return bool(policy and policy.queue and self.rate.mode == "respect")

    @property
    def endpoint_shares(self) -> tuple[float, float]:
        """endpoint_shares is (deploy, fleet deploy) as fractions: the mix's, or the log's."""
        if self.replay:
            fleet = sum(match.fleet for match in self.replay) / len(self.replay)
            return 1 - fleet, fleet
        fleet = self.mix.shares[1]
        if fleet and not self.mix.private_host_ids:  # a region with no fleet: plain deploys
            weights = {region.name: region.weight for region in self.regions}
            total = sum(weights.values()) or 1.0
            fleet *= sum(weights[r.name] for r in self.regions if r.has_fleet) / total
        return 1 - fleet, fleet

    @property
    def world_file(self) -> Path | None:
        """world_file is target.world, relative to the scenario file (None: the default world)."""
        if not self.target.world:
            return None
        world = Path(self.target.world)
        return world if world.is_absolute() else Path(self.source).parent / world


# Codes people write that ISO 3166 alpha-2 spells otherwise.
_COUNTRY_ALIASES = {"UK": "GB", "EL": "GR", "EN": "GB"}


def _country_code(code: str) -> str:
    if code.upper() in country_positions():
        return code.upper()
    meant = _COUNTRY_ALIASES.get(code.upper()) or country_alpha3().get(code.upper())
    fix = f"did you mean {meant!r}?" if meant else "use an ISO 3166 alpha-2 code such as BR"
    raise ValueError(f"unknown country code {code!r}; {fix}")


def _same_table(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """_same_table is whether two distribution tables are the same distribution."""
    if set(a) != set(b):
        return False
    return all(a[k] == b[k] if isinstance(a[k], str) else math.isclose(a[k], b[k]) for k in a)


def _table_text(table: dict[str, Any]) -> str:
    """_table_text is a distribution table in a few words: "lognormal, median 900 s"."""
    if table.get("distribution") == "fixed":
        return f"fixed, {table['value']:g} s"
    rest = ", ".join(f"{k} {v:g}" for k, v in table.items() if k != "distribution")
    return f"{table.get('distribution')}, {rest}"
