"""JSON shapes of deployments, as Edgegap's /v1 endpoints return them."""

from __future__ import annotations

from emulator._clock import PlatformClock
from emulator._platform import Deployment, Status

GAME_PORT = 7777
DEFAULT_MAX_DURATION_MIN = 1440


def public_ip(dep: Deployment) -> str | None:
    """public_ip is an address from TEST-NET-3 (RFC 5737): shaped right, routes nowhere."""
    if dep.location is None:
        return None
    return f"203.0.113.{int(dep.request_id[-2:], 16)}"


def fqdn(dep: Deployment) -> str | None:
    return f"{dep.request_id}.pr.edgegap.net" if dep.location is not None else None


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
        "country": loc.country,
        "continent": loc.continent,
        "administrative_division": loc.administrative_division,
        "timezone": loc.timezone,
        "latitude": loc.position.latitude,
        "longitude": loc.position.longitude,
    }


def status_body(dep: Deployment, clock: PlatformClock, now: float) -> dict:
    """status_body is the GET /v1/status/{request_id} body (also every webhook's body)."""
    end = dep.removed_at if dep.removed_at is not None else now
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
        "start_time": clock.timestamp(dep.created_at),
        "elapsed_time": int(max(0.0, end - dep.created_at)),
        "removal_time": None if dep.removed_at is None else clock.timestamp(dep.removed_at),
        "max_duration": DEFAULT_MAX_DURATION_MIN,
        "ports": ports(dep),
        "location": location(dep),
        "tags": list(dep.tags),
        "command": None,
        "arguments": None,
        "private_host_id": dep.host.id if dep.host else None,
    }


def list_item(dep: Deployment, clock: PlatformClock) -> dict:
    """list_item is one entry of GET /v1/deployments."""
    return {
        "request_id": dep.request_id,
        "fqdn": fqdn(dep),
        "public_ip": public_ip(dep),
        "ready": dep.status is Status.READY,
        "start_time": clock.timestamp(dep.created_at),
        "ports": ports(dep),
        "tags": list(dep.tags),
    }


def deployment_summary(dep: Deployment, clock: PlatformClock, now: float) -> dict:
    """deployment_summary is what DELETE /v1/stop returns about the stopped deployment."""
    body = status_body(dep, clock, now)
    keys = ("request_id", "fqdn", "public_ip", "app_name", "app_version", "current_status")
    return {key: body[key] for key in keys} | {"location": body["location"]}
