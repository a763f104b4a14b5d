"""The world the emulator simulates: locations, private hosts, applications, timings.

A world is a TOML file (the default ships as emulator/data/default-world.toml,
whose comments document every key). `load_world(path)` reads and checks one;
each problem raises ConfigError naming the file, the key and the fix.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from emulator._distributions import Distribution, parse_distribution
from emulator._errors import ConfigError
from geo import Position, country_positions, country_regions

HOST_STATUSES = ("ACTIVE", "PENDING")
DEFAULT_FLEET = "my-fleet"


@dataclass(frozen=True, slots=True)
class Location:
    """Location is an Edgegap site that can run `capacity` deployments at once."""

    city: str
    country: str
    position: Position
    capacity: int
    cached: bool
    continent: str = ""
    administrative_division: str = ""
    timezone: str = ""


@dataclass(frozen=True, slots=True)
class PrivateHost:
    """PrivateHost is a host of a private fleet, placed at one of the world's locations."""

    id: str
    location: Location
    capacity: int
    status: str
    fleet: str = (
        DEFAULT_FLEET  # the private fleet it belongs to (GET /v2/private-fleets/{fleet}/hosts)
    )

    @property
    def active(self) -> bool:
        return self.status == "ACTIVE"


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """Lifecycle holds the durations (platform seconds) a deployment goes through."""

    boot_s: Distribution = field(default_factory=lambda: Distribution.lognormal(3.0, 0.25))
    cached_boot_s: Distribution = field(default_factory=lambda: Distribution.lognormal(1.5, 0.25))
    lifetime_s: Distribution = field(default_factory=lambda: Distribution.lognormal(900.0, 0.35))
    terminate_s: Distribution = field(default_factory=lambda: Distribution.fixed(1.0))
    error_retention_s: float = 300.0


@dataclass(frozen=True, slots=True)
class LimiterShape:
    """LimiterShape is how the API's rate limiter counts (emulator._ratelimit): its
    algorithm, and a token bucket's burst (None: the limit)."""

    algorithm: str = "sliding-window"
    burst: int | None = None


@dataclass(frozen=True, slots=True)
class World:
    """World is everything the capacity model needs to place deployments."""

    locations: tuple[Location, ...]
    private_hosts: dict[str, PrivateHost]
    applications: dict[str, frozenset[str]]
    lifecycle: Lifecycle = field(default_factory=Lifecycle)
    # What one deployment of an application reserves: (vCPU, memory GB), where the world says.
    resources: dict[str, tuple[float, float]] = field(default_factory=dict)
    limiter: LimiterShape = field(default_factory=LimiterShape)
    api_latency_ms: Distribution | None = None  # a deploy's answer takes this (None: as fast)
    # Where each value came from, by key ("lifecycle.boot_s": "calibrated from ..."): what a
    # report's assumptions table says beside the shipped default.
    provenance: dict[str, str] = field(default_factory=dict)
    # A calibrated median's 90% interval, by key: the edges `--sensitivity` tries.
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    max_distance_km: float = 20000.0
    source: str = "<memory>"
    sha256: str = ""
    given: frozenset[str] = frozenset()  # the keys the file sets ("limits.algorithm", ...)

    def knows(self, application: str, version: str) -> bool:
        return version in self.applications.get(application, ())

    def with_lifetime(self, lifetime_s: Distribution) -> World:
        """with_lifetime is this world with deployments that run for lifetime_s (a scenario's
        match length)."""
        said = {"lifecycle.lifetime_s": "the scenario's demand.match_length"}
        return replace(
            self,
            lifecycle=replace(self.lifecycle, lifetime_s=lifetime_s),
            provenance=self.provenance | said,
        )

    def fleet_hosts(self, fleet: str) -> list[str]:
        """fleet_hosts is the ids of the fleet's hosts, in the world file's order."""
        return [host.id for host in self.private_hosts.values() if host.fleet == fleet]

    def fleets(self) -> list[str]:
        return list(dict.fromkeys(host.fleet for host in self.private_hosts.values()))

    def describe(self) -> dict:
        """describe is what a run's manifest records of the world: which file, how big."""
        active_hosts = [h for h in self.private_hosts.values() if h.status == "ACTIVE"]
        return {
            "source": self.source,
            "sha256": self.sha256,
            "locations": len(self.locations),
            "capacity": sum(location.capacity for location in self.locations),
            "private_hosts": {
                host.id: {
                    "capacity": host.capacity,
                    "status": host.status,
                    "location": host.location.city,
                    "fleet": host.fleet,
                }
                for host in self.private_hosts.values()
            },
            "private_capacity": sum(host.capacity for host in active_hosts),
            "lifetime_s": self.lifecycle.lifetime_s.describe(),
            "assumptions": self.assumptions(),
        }

    def assumptions(self) -> list[dict[str, str]]:
        """assumptions are the values a run on this world rests on, each with where it came
        from: the world file's [provenance] for that key, else "set in <file>"."""
        values = {
            "lifecycle.boot_s": self.lifecycle.boot_s.describe(),
            "lifecycle.cached_boot_s": self.lifecycle.cached_boot_s.describe(),
            "lifecycle.lifetime_s": self.lifecycle.lifetime_s.describe(),
            "lifecycle.terminate_s": self.lifecycle.terminate_s.describe(),
            "limits.algorithm": self.limiter.algorithm
            + (f" (burst {self.limiter.burst})" if self.limiter.burst else ""),
            "api.latency_ms": self.api_latency_ms.describe() if self.api_latency_ms else "none",
        }
        return [
            {"key": key, "value": _text(value), "source": self._source_of(key)}
            for key, value in values.items()
        ]

    def _source_of(self, key: str) -> str:
        """_source_of says where a value came from: its [provenance], the shipped world,
        the world file that sets it, or the emulator's default where the file does not."""
        if key in self.provenance:
            return self.provenance[key]
        if self.source.endswith(f"data/{DEFAULT_WORLD}"):
            return f"the shipped default ({DEFAULT_WORLD})"
        if key in self.given:
            return f"set in {self.source}"
        return f"the emulator's default ({self.source} does not set it)"


DEFAULT_WORLD = "default-world.toml"


def _text(value: object) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    return str(value)


def default_world_path() -> Path:
    """default_world_path is the world shipped with the emulator."""
    return Path(str(resources.files("emulator") / "data" / DEFAULT_WORLD))


def load_world(path: str | Path | None = None) -> World:
    """load_world reads a world file (the default world when path is None), with the world
    it extends merged in (world_table)."""
    path = Path(path) if path else default_world_path()
    raw, digest = _resolved_table(path, ())
    key = (str(path), digest)
    if key not in _LOADED:  # a command reads its world once, whoever asks for it
        try:
            world = parse_world(raw, source=str(path))
        except ConfigError as exc:
            raise exc.in_file(str(path)) from None
        _LOADED[key] = replace(world, sha256=digest)
    return _LOADED[key]


_LOADED: dict[tuple[str, str], World] = {}  # by path and the bytes of every file it reads
_READ: dict[tuple[str, int, int], tuple[bytes, dict]] = {}  # by path, mtime and size


def world_table(path: str | Path | None = None) -> dict:
    """world_table is a world file as one self-contained table: the world it extends merged
    in and its [cloud] applied (what a search writes back with a knob changed)."""
    import copy

    return copy.deepcopy(_resolved_table(Path(path) if path else default_world_path(), ())[0])


SHIPPED = "shipped"  # `extends = "shipped"`: the world that ships with the emulator
UNLIMITED_CAPACITY = 10**9  # `[cloud] unlimited = true`: no location ever runs out


def _resolved_table(path: Path, seen: tuple[Path, ...]) -> tuple[dict, str]:
    """_resolved_table is the file's table with what it extends merged in, and the sha256 of
    every file that took part (a distributed run's processes must have the same)."""
    data, raw = _read_table(path)
    digest = hashlib.sha256(data)
    base = _base_of(raw, path)
    if base is not None:
        if base.resolve() in seen:
            raise ConfigError(
                "extends", f"{base} extends itself in a loop", "break the loop", str(path)
            )
        base_raw, base_digest = _resolved_table(base, (*seen, path.resolve()))
        digest.update(base_digest.encode())
        raw = _merged(base_raw, raw, str(path))
    try:
        raw = _with_cloud(raw)
    except ConfigError as exc:
        raise exc.in_file(str(path)) from None
    return raw, digest.hexdigest()


def _read_table(path: Path) -> tuple[bytes, dict]:
    try:
        stat = path.stat()
        key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
        if key not in _READ:
            data = path.read_bytes()
            _READ[key] = data, tomllib.loads(data.decode("utf-8"))
        return _READ[key]
    except FileNotFoundError:
        raise ConfigError("world", f"file {path} not found", "pass an existing file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("world", f"cannot read {path}: {exc}", "check the file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("world", f"invalid TOML: {exc}", "fix the syntax", str(path)) from None


def _base_of(raw: dict, path: Path) -> Path | None:
    """_base_of is the world a file extends: `extends` (a path from the file's folder, or
    "shipped"), the shipped world for a file with no [[locations]] of its own, else None."""
    extends = raw.get("extends")
    if extends is None:
        return None if "locations" in raw else default_world_path()
    if not isinstance(extends, str) or not extends.strip():
        raise ConfigError("extends", "must be a world file's path", 'or "shipped"', str(path))
    if extends == SHIPPED:
        return default_world_path()
    base = Path(extends)
    base = base if base.is_absolute() else path.parent / base
    if not base.is_file():
        raise ConfigError(
            "extends",
            f"{extends!r} not found (looked for {base})",
            "give a world file's path",
            str(path),
        )
    return base


_MERGED_TABLES = ("placement", "lifecycle", "limits", "api", "provenance", "intervals")


def _merged(base: dict, added: dict, source: str) -> dict:
    """_merged is the base world with what a file adds: its tables' keys over the base's,
    its applications and locations by name (a city it names replaces the base's), and its
    fleets whole (a fleet it names replaces the base's hosts of that fleet)."""
    merged = {key: value for key, value in base.items() if key != "cloud"}
    for key in _MERGED_TABLES:
        if key in added:
            if not isinstance(added[key], dict):
                raise ConfigError(key, "must be a table", f"write it as [{key}]", source)
            merged[key] = {**base.get(key, {}), **added[key]}
    merged["applications"] = _by_key(base, added, "applications", "name")
    merged["locations"] = _by_key(base, added, "locations", "city")
    fleets = {host.get("fleet", DEFAULT_FLEET) for host in added.get("private_hosts", [])}
    kept = [h for h in base.get("private_hosts", []) if h.get("fleet", DEFAULT_FLEET) not in fleets]
    merged["private_hosts"] = kept + list(added.get("private_hosts", []))
    for key, value in added.items():
        if key not in merged and key != "extends":
            merged[key] = value  # checked as the file's own (an unknown key is named)
    if "cloud" in added:
        merged["cloud"] = added["cloud"]
    return merged


def _by_key(base: dict, added: dict, key: str, name: str) -> list:
    tables = {table.get(name): table for table in base.get(key, [])}
    for table in added.get(key, []):
        tables[table.get(name) if isinstance(table, dict) else None] = table
    return list(tables.values())


def _with_cloud(raw: dict) -> dict:
    """_with_cloud applies [cloud]: every location's capacity times capacity_factor, or
    unlimited (Edgegap's cloud treated as never running out)."""
    cloud = raw.get("cloud")
    if cloud is None:
        return raw
    if not isinstance(cloud, dict):
        raise ConfigError("cloud", "must be a table", "write it as [cloud]")
    _no_unknown_keys(cloud, "cloud", {"capacity_factor", "unlimited"})
    unlimited = _get(cloud, "cloud", "unlimited", bool, False)
    factor = _get(cloud, "cloud", "capacity_factor", _NUMBER, None)
    if unlimited and factor is not None:
        raise ConfigError("cloud.capacity_factor", "given with unlimited", "keep one of them")
    if factor is not None and factor <= 0:
        raise ConfigError("cloud.capacity_factor", "must be above 0", "e.g. 2 or 0.5")
    locations = [
        table | {"capacity": _cloud_capacity(table.get("capacity"), unlimited, factor)}
        for table in _tables(raw, "locations")
    ]
    return {key: value for key, value in raw.items() if key != "cloud"} | {"locations": locations}


def _cloud_capacity(capacity: object, unlimited: bool, factor: float | None) -> object:
    if unlimited:
        return UNLIMITED_CAPACITY
    if factor is None or not isinstance(capacity, int) or isinstance(capacity, bool):
        return capacity  # a bad capacity is named by the location's own check
    return round(capacity * factor)


def parse_world(raw: dict, source: str = "<memory>") -> World:
    """parse_world checks a decoded TOML document and builds the World."""
    _no_unknown_keys(
        raw,
        "",
        {
            "placement",
            "lifecycle",
            "applications",
            "locations",
            "private_hosts",
            "limits",
            "api",
            "provenance",
            "intervals",
            "extends",
            "cloud",
        },
    )
    locations = tuple(
        _location(item, f"locations[{i}]") for i, item in enumerate(_tables(raw, "locations"))
    )
    if not locations:
        raise ConfigError("locations", "the world has no locations", "add [[locations]] tables")
    _unique([loc.city for loc in locations], "locations", "city")
    by_city = {loc.city: loc for loc in locations}
    hosts = [
        host
        for i, item in enumerate(_tables(raw, "private_hosts", required=False))
        for host in _private_hosts(item, f"private_hosts[{i}]", by_city)
    ]
    _unique([host.id for host in hosts], "private_hosts", "id")
    applications = _tables(raw, "applications")
    return World(
        locations=locations,
        private_hosts={host.id: host for host in hosts},
        applications=_applications(applications),
        resources=_resources(applications),
        lifecycle=_lifecycle(raw.get("lifecycle", {})),
        max_distance_km=_placement(raw.get("placement", {})),
        limiter=_limiter(raw.get("limits", {})),
        api_latency_ms=_api_latency(raw.get("api", {})),
        provenance=_provenance(raw.get("provenance", {})),
        intervals=_intervals(raw.get("intervals", {})),
        source=source,
        given=frozenset(
            f"{section}.{key}"
            for section in ("lifecycle", "limits", "api")
            if isinstance(raw.get(section), dict)
            for key in raw[section]
        ),
    )


def _tables(raw: dict, key: str, required: bool = True) -> list[dict]:
    items = raw.get(key, [])
    if required and not items:
        raise ConfigError(key, "is missing", f"add at least one [[{key}]] table")
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise ConfigError(key, "must be an array of tables", f"write each as [[{key}]]")
    return items


def _no_unknown_keys(table: dict, where: str, allowed: set[str]) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        key = f"{where}.{unknown[0]}" if where else unknown[0]
        raise ConfigError(key, "unknown key", f"allowed keys are {', '.join(sorted(allowed))}")


def _get(table: dict, where: str, key: str, kind: type | tuple, default: object = ...) -> Any:
    """_get is table[key], checked to be of kind (Any: the caller knows the kind it asked)."""
    if key not in table:
        if default is ...:
            raise ConfigError(f"{where}.{key}", "is missing", f"add {key} = ...")
        return default
    value = table[key]
    if isinstance(value, bool) and kind is not bool:
        raise ConfigError(f"{where}.{key}", "has the wrong type", f"use a {_kind_name(kind)}")
    if not isinstance(value, kind):
        raise ConfigError(f"{where}.{key}", "has the wrong type", f"use a {_kind_name(kind)}")
    return value


def _kind_name(kind: type | tuple) -> str:
    names = {str: "string", bool: "boolean (true/false)", int: "whole number", list: "list"}
    if isinstance(kind, tuple):
        return "number"
    return names.get(kind, kind.__name__)


_NUMBER = (int, float)
_LOCATION_KEYS = {
    "city",
    "country",
    "latitude",
    "longitude",
    "capacity",
    "cached",
    "continent",
    "administrative_division",
    "timezone",
}


def _location(table: dict, where: str) -> Location:
    _no_unknown_keys(table, where, _LOCATION_KEYS)
    country = _country_code(_get(table, where, "country", str), f"{where}.country")
    latitude = float(_get(table, where, "latitude", _NUMBER))
    longitude = float(_get(table, where, "longitude", _NUMBER))
    if not -90 <= latitude <= 90:
        raise ConfigError(f"{where}.latitude", "is outside [-90, 90]", "use decimal degrees")
    if not -180 <= longitude <= 180:
        raise ConfigError(f"{where}.longitude", "is outside [-180, 180]", "use decimal degrees")
    return Location(
        city=_nonempty(_get(table, where, "city", str), f"{where}.city"),
        country=country,
        position=Position(latitude, longitude),
        capacity=_capacity(table, where),
        cached=bool(_get(table, where, "cached", bool, False)),
        continent=str(_get(table, where, "continent", str, country_regions().get(country, ""))),
        administrative_division=str(_get(table, where, "administrative_division", str, "")),
        timezone=str(_get(table, where, "timezone", str, "")),
    )


def _country_code(code: str, where: str) -> str:
    if code.upper() not in country_positions():
        raise ConfigError(where, f"unknown country code {code!r}", "use an ISO 3166 alpha-2 code")
    return code.upper()


def _nonempty(text: str, where: str) -> str:
    if not text.strip():
        raise ConfigError(where, "is empty", "give it a name")
    return text


def _capacity(table: dict, where: str) -> int:
    capacity = _get(table, where, "capacity", int)
    if capacity < 0:
        raise ConfigError(f"{where}.capacity", "is negative", "use a whole number >= 0")
    return capacity


def _private_hosts(table: dict, where: str, by_city: dict[str, Location]) -> list[PrivateHost]:
    """_private_hosts is the entry's hosts: itself, or `count` identical ones numbered
    ID-1 .. ID-N (a studio's group of hosts in one city)."""
    count = _get(table, where, "count", int, 1)
    if count < 1:
        raise ConfigError(f"{where}.count", "is below 1", "use a whole number of hosts >= 1")
    host = _private_host({k: v for k, v in table.items() if k != "count"}, where, by_city)
    if "count" not in table:
        return [host]
    return [replace(host, id=f"{host.id}-{n}") for n in range(1, count + 1)]


def _private_host(table: dict, where: str, by_city: dict[str, Location]) -> PrivateHost:
    _no_unknown_keys(table, where, {"id", "location", "capacity", "status", "fleet", "count"})
    city = _get(table, where, "location", str)
    if city not in by_city:
        raise ConfigError(
            f"{where}.location", f"no location named {city!r}", "use the city of a [[locations]]"
        )
    status = _get(table, where, "status", str, "ACTIVE")
    if status not in HOST_STATUSES:
        raise ConfigError(f"{where}.status", f"unknown status {status!r}", "use ACTIVE or PENDING")
    return PrivateHost(
        id=_nonempty(_get(table, where, "id", str), f"{where}.id"),
        location=by_city[city],
        capacity=_capacity(table, where),
        status=status,
        fleet=_nonempty(_get(table, where, "fleet", str, DEFAULT_FLEET), f"{where}.fleet"),
    )


def _unique(values: list[str], key: str, name: str) -> None:
    seen: set[str] = set()
    for i, value in enumerate(values):
        if value in seen:
            raise ConfigError(f"{key}[{i}].{name}", f"{value!r} appears twice", "make it unique")
        seen.add(value)


def _applications(tables: list[dict]) -> dict[str, frozenset[str]]:
    applications: dict[str, frozenset[str]] = {}
    for i, table in enumerate(tables):
        where = f"applications[{i}]"
        _no_unknown_keys(table, where, {"name", "versions", "vcpu", "memory_gb"})
        name = _nonempty(_get(table, where, "name", str), f"{where}.name")
        versions = _get(table, where, "versions", list)
        if not versions or not all(isinstance(v, str) and v for v in versions):
            raise ConfigError(f"{where}.versions", "must list version names", 'e.g. ["1.0.0"]')
        applications[name] = applications.get(name, frozenset()) | frozenset(versions)
    return applications


def _resources(tables: list[dict]) -> dict[str, tuple[float, float]]:
    """_resources is each application's (vCPU, memory GB) where its table gives both."""
    resources = {}
    for i, table in enumerate(tables):
        where = f"applications[{i}]"
        vcpu = _get(table, where, "vcpu", _NUMBER, None)
        memory = _get(table, where, "memory_gb", _NUMBER, None)
        if (vcpu is None) != (memory is None):
            raise ConfigError(
                f"{where}.vcpu", "given without memory_gb (or the reverse)", "give both"
            )
        if vcpu is None:
            continue
        if vcpu <= 0 or memory <= 0:
            raise ConfigError(
                f"{where}.vcpu", "vcpu and memory_gb must be above 0", "e.g. 0.5 and 1"
            )
        resources[table["name"]] = (float(vcpu), float(memory))
    return resources


def _lifecycle(table: object) -> Lifecycle:
    if not isinstance(table, dict):
        raise ConfigError("lifecycle", "must be a table", "write it as [lifecycle]")
    keys = {"boot_s", "cached_boot_s", "lifetime_s", "terminate_s", "error_retention_s"}
    _no_unknown_keys(table, "lifecycle", keys)
    defaults = Lifecycle()
    durations = {
        key: parse_distribution(table[key], f"lifecycle.{key}")
        for key in keys - {"error_retention_s"}
        if key in table
    }
    retention = float(
        _get(table, "lifecycle", "error_retention_s", _NUMBER, defaults.error_retention_s)
    )
    if retention < 0:
        raise ConfigError("lifecycle.error_retention_s", "is negative", "use seconds >= 0")
    return Lifecycle(
        boot_s=durations.get("boot_s", defaults.boot_s),
        cached_boot_s=durations.get("cached_boot_s", defaults.cached_boot_s),
        lifetime_s=durations.get("lifetime_s", defaults.lifetime_s),
        terminate_s=durations.get("terminate_s", defaults.terminate_s),
        error_retention_s=retention,
    )


def _limiter(table: object) -> LimiterShape:
    from emulator._ratelimit import ALGORITHMS

    if not isinstance(table, dict):
        raise ConfigError("limits", "must be a table", "write it as [limits]")
    _no_unknown_keys(table, "limits", {"algorithm", "burst"})
    algorithm = _get(table, "limits", "algorithm", str, "sliding-window")
    if algorithm not in ALGORITHMS:
        raise ConfigError(
            "limits.algorithm", f"unknown {algorithm!r}", f"use {', '.join(ALGORITHMS)}"
        )
    burst = _get(table, "limits", "burst", int, None)
    if burst is not None and (burst < 1 or algorithm != "token-bucket"):
        raise ConfigError(
            "limits.burst", "is a token bucket's, >= 1", 'set algorithm = "token-bucket"'
        )
    return LimiterShape(algorithm, burst)


def _api_latency(table: object) -> Distribution | None:
    if not isinstance(table, dict):
        raise ConfigError("api", "must be a table", "write it as [api]")
    _no_unknown_keys(table, "api", {"latency_ms"})
    if "latency_ms" not in table:
        return None
    return parse_distribution(table["latency_ms"], "api.latency_ms")


def _provenance(table: object) -> dict[str, str]:
    if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
        raise ConfigError(
            "provenance", "must be a table of texts", 'e.g. "lifecycle.boot_s" = "..."'
        )
    return dict(table)


def _intervals(table: object) -> dict[str, tuple[float, float]]:
    if not isinstance(table, dict):
        raise ConfigError("intervals", "must be a table", 'e.g. "lifecycle.boot_s" = [3.9, 4.5]')
    intervals = {}
    for key, pair in table.items():
        if not (
            isinstance(pair, list) and len(pair) == 2 and all(isinstance(v, _NUMBER) for v in pair)
        ):
            raise ConfigError(f"intervals.{key}", "must be [low, high]", "two numbers")
        intervals[key] = (float(pair[0]), float(pair[1]))
    return intervals


def _placement(table: object) -> float:
    if not isinstance(table, dict):
        raise ConfigError("placement", "must be a table", "write it as [placement]")
    _no_unknown_keys(table, "placement", {"max_distance_km"})
    distance = float(_get(table, "placement", "max_distance_km", _NUMBER, 20000.0))
    if distance <= 0:
        raise ConfigError("placement.max_distance_km", "must be above 0", "use kilometres > 0")
    return distance
