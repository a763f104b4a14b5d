"""JSON shapes of deployments, applications and fleet hosts, as Edgegap's API returns them.

Where the v1 spec requires a string (fqdn, public_ip of a deployment that never got a
server), an empty string stands in for the missing value; times are in the spec's format
("2026-04-22 12:00:46.444265", UTC); `start_time` is when the deployment became READY
(its creation until then) and `elapsed_time` the whole seconds since.
"""

from __future__ import annotations

import math

from emulator._clock import PlatformClock
from emulator._platform import Deployment, Status
from emulator._world import PrivateHost, World
from geo import country_names

GAME_PORT = 7777
DEFAULT_MAX_DURATION_MIN = 1440
CPU_UNITS_PER_SLOT = 1024  # an app version's req_cpu: one vCPU a deployment
MEMORY_MB_PER_SLOT = 2048
HOST_OVERHEAD_CPU, HOST_OVERHEAD_MB = 128, 128  # the beacon and orchestration on a host
LOGS = "Server started on port 7777\nWaiting for players\n"


def public_ip(dep: Deployment) -> str:
    """public_ip is an address from TEST-NET-3 (RFC 5737): shaped right, routes nowhere."""
    if dep.location is None:
        return ""
    return f"203.0.113.{int(dep.request_id[-2:], 16)}"


def fqdn(dep: Deployment) -> str:
    return f"{dep.request_id}.pr.edgegap.net" if dep.location is not None else ""


def ports(dep: Deployment) -> dict:
    if dep.location is None:
        return {}
    link = f"{fqdn(dep)}:{dep.port}"
    return {
        "gameport": {
            "name": "gameport",
            "link": link,
            "internal": GAME_PORT,
            "external": dep.port,
            "protocol": "UDP",
            "tls_upgrade": False,
        }
    }


def location(dep: Deployment) -> dict | None:
    loc = dep.location
    if loc is None:
        return None
    return {
        "city": loc.city,
        "country": country_names().get(loc.country, loc.country),
        "continent": loc.continent,
        "administrative_division": loc.administrative_division,
        "timezone": loc.timezone,
        "latitude": loc.position.latitude,
        "longitude": loc.position.longitude,
    }


def _ready_since(dep: Deployment, now: float) -> float | None:
    """_ready_since is when the deployment became READY, if it did by now."""
    return dep.ready_at if math.isfinite(dep.ready_at) and dep.ready_at <= now else None


def status_body(dep: Deployment, clock: PlatformClock, now: float) -> dict:
    """status_body is the GET /v1/status/{request_id} body (also every webhook's body)."""
    end = dep.removed_at if dep.removed_at is not None else now
    ready = _ready_since(dep, now) if dep.location is not None else None
    return {
        "request_id": dep.request_id,
        "fqdn": fqdn(dep),
        "public_ip": public_ip(dep),
        "app_name": dep.application,
        "app_version": dep.version,
        "current_status": dep.status.value,
        "last_status": dep.last_status.value if dep.last_status else None,
        "running": dep.status is Status.READY,
        "error": dep.status is Status.ERROR or bool(dep.error_detail),
        "error_detail": dep.error_detail,
        "start_time": clock.timestamp(ready if ready is not None else dep.created_at),
        "elapsed_time": int(max(0.0, end - ready)) if ready is not None else 0,
        "removal_time": None if dep.removed_at is None else clock.timestamp(dep.removed_at),
        "max_duration": DEFAULT_MAX_DURATION_MIN,
        "ports": ports(dep),
        "location": location(dep),
        "tags": list(dep.tags),
        "command": None,
        "arguments": None,
        "private_host_id": dep.host.id if dep.host else None,
    }


def list_item(dep: Deployment, clock: PlatformClock, now: float) -> dict:
    """list_item is one entry of GET /v1/deployments."""
    ready = _ready_since(dep, now)
    return {
        "request_id": dep.request_id,
        "fqdn": fqdn(dep),
        "public_ip": public_ip(dep),
        "ready": dep.status is Status.READY,
        "start_time": clock.timestamp(ready if ready is not None else dep.created_at),
        "ports": ports(dep),
        "tags": list(dep.tags),
    }


def pagination(page: int, limit: int, total: int) -> dict:
    """pagination is the v1 lists' pagination object for page (from 1) of limit items."""
    pages = max(1, math.ceil(total / limit))
    return {
        "number": page,
        "next_page_number": page + 1 if page < pages else None,
        "previous_page_number": page - 1 if page > 1 else None,
        "paginator": {"num_pages": pages},
        "has_next": page < pages,
        "has_previous": page > 1,
    }


def container_logs(dep: Deployment) -> dict:
    """container_logs is GET /v1/deployment/{id}/container-logs: a server that started well."""
    return {
        "logs": LOGS if dep.status in (Status.READY, Status.TERMINATING) else "",
        "crash_logs": None,
        "crash_data": None,
        "encoding": "utf-8",
        "logs_link": None,
    }


def application(name: str, clock: PlatformClock) -> dict:
    """application is an Application: the world's applications exist since the start."""
    created = clock.timestamp(0.0)
    return {
        "name": name,
        "is_active": True,
        "image": "",
        "create_time": created,
        "last_updated": created,
    }


def app_version(application_name: str, version: str, clock: PlatformClock) -> dict:
    """app_version is an AppVersion: one vCPU and 2 GB a deployment, one UDP game port."""
    created = clock.timestamp(0.0)
    return {
        "name": version,
        "create_time": created,
        "last_updated": created,
        "is_active": True,
        "req_cpu": CPU_UNITS_PER_SLOT,
        "req_memory": MEMORY_MB_PER_SLOT,
        "req_video": 0,
        "docker_repository": "registry.edgegap.com",
        "docker_image": f"emulated/{application_name}",
        "docker_tag": version,
        "verify_image": False,
        "force_cache": False,
        "caching_percent": 0.0,
        "time_to_deploy": 30,
        "max_duration": DEFAULT_MAX_DURATION_MIN,
        "restart_policy": "never",
        "termination_grace_period_seconds": 5,
        "ports": [
            {
                "port": GAME_PORT,
                "protocol": "UDP",
                "to_check": False,
                "tls_upgrade": False,
                "name": "gameport",
            }
        ],
        "envs": [],
    }


def fleet_host(host: PrivateHost, used: int, world: World, clock: PlatformClock) -> dict:
    """fleet_host is a private fleet host: its CPU and memory follow from its slots."""
    position = host.location.position
    active = host.active
    created = clock.iso(0.0)
    return {
        "host_id": host.id,
        "status": host.status,
        "ip_address": f"198.51.100.{sum(map(ord, host.id)) % 254 + 1}" if active else None,
        "latitude": position.latitude,
        "longitude": position.longitude,
        "city": host.location.city,
        "country": country_names().get(host.location.country, host.location.country),
        "continent": host.location.continent,
        "allocated_cpu_units": used * CPU_UNITS_PER_SLOT + HOST_OVERHEAD_CPU,
        "allocated_memory_mb": used * MEMORY_MB_PER_SLOT + HOST_OVERHEAD_MB,
        "allocatable_cpu_units": host.capacity * CPU_UNITS_PER_SLOT,
        "allocatable_memory_mb": host.capacity * MEMORY_MB_PER_SLOT,
        "beacon": None,
        "created_at": created,
        "updated_at": created,
        "centroid": {
            "label": host.location.city,
            "latitude": position.latitude,
            "longitude": position.longitude,
            "radius_km": world.max_distance_km,
            "desired_host_count": 1,
        },
        "delete_schedule": None,
        "fleet_host_specifications": {
            "cpu_units": host.capacity * CPU_UNITS_PER_SLOT + HOST_OVERHEAD_CPU,
            "memory_mb": host.capacity * MEMORY_MB_PER_SLOT + HOST_OVERHEAD_MB,
            "base_clock_speed_mhz": 2000,
        },
    }
