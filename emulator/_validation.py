"""Checks deploy and fleet-deploy bodies against the V2 spec's schemas.

Every rule of DeploymentCreate and PrivateFleetDeploymentCreate is checked:
types, required fields, minItems, uniqueItems, users, environment variables and
webhooks. Keys the spec does not define are ignored, as the spec allows them.
The first problem found raises BadRequest naming the field by its JSON path:

    >>> parse_deploy({"application": "a", "version": "v", "users": []})
    Traceback (most recent call last):
    ...
    emulator._validation.BadRequest: users: must have at least 1 item
"""

from __future__ import annotations

from urllib.parse import urlsplit

from emulator._platform import DeployRequest
from geo import Position, parse_and_locate_ip

USER_TYPES = ("ip_address", "geo_coordinates")
WEBHOOKS = ("webhook_on_ready", "webhook_on_error", "webhook_on_terminated")


class BadRequest(Exception):
    """BadRequest is a 400: `field` is the JSON path of the offending value."""

    def __init__(self, field: str, reason: str) -> None:
        self.field, self.reason = field, reason
        super().__init__(f"{field}: {reason}")


def parse_deploy(body: object) -> DeployRequest:
    """parse_deploy checks a POST /v2/deployments body."""
    body = _object(body, "body")
    require_cached = body.get("require_cached_locations")
    if require_cached is not None and not isinstance(require_cached, bool):
        raise BadRequest("require_cached_locations", "must be a boolean or null")
    return _common(body, require_cached=bool(require_cached), private_host_ids=None)


def parse_fleet_deploy(body: object) -> DeployRequest:
    """parse_fleet_deploy checks a POST /v2/private-fleets/deployments body."""
    body = _object(body, "body")
    host_ids = _array(body, "private_host_ids", required=True, min_items=1)
    for i, host_id in enumerate(host_ids):
        if not isinstance(host_id, str):
            raise BadRequest(f"private_host_ids[{i}]", "must be a string")
    if len(set(host_ids)) != len(host_ids):
        raise BadRequest("private_host_ids", "items must be unique")
    return _common(body, require_cached=False, private_host_ids=tuple(host_ids))


def _common(
    body: dict, require_cached: bool, private_host_ids: tuple[str, ...] | None
) -> DeployRequest:
    application = _string(body, "application")
    version = _string(body, "version")
    users = _array(body, "users", required=True, min_items=1)
    positions = []
    for i, user in enumerate(users):
        position = _user(user, i)
        if position is not None:
            positions.append(position)
    _environment_variables(body)
    tags = _array(body, "tags")
    for i, tag in enumerate(tags):
        if not isinstance(tag, str):
            raise BadRequest(f"tags[{i}]", "must be a string")
    return DeployRequest.of_players(
        application,
        version,
        positions,
        require_cached=require_cached,
        private_host_ids=private_host_ids,
        tags=tuple(tags),
        webhooks=_webhooks(body),
    )


def _object(value: object, field: str) -> dict:
    if not isinstance(value, dict):
        raise BadRequest(field, "must be a JSON object")
    return value


def _string(body: dict, key: str, where: str = "") -> str:
    field = f"{where}.{key}" if where else key
    if key not in body:
        raise BadRequest(field, "is required")
    if not isinstance(body[key], str):
        raise BadRequest(field, "must be a string")
    return body[key]


def _array(body: dict, key: str, required: bool = False, min_items: int = 0) -> list:
    if key not in body:
        if required:
            raise BadRequest(key, "is required")
        return []
    value = body[key]
    if not isinstance(value, list):
        raise BadRequest(key, "must be an array")
    if len(value) < min_items:
        raise BadRequest(key, f"must have at least {min_items} item")
    return value


def _user(user: object, i: int) -> Position | None:
    """_user checks users[i] and returns where it is (None: an IP with no known country).

    Field paths are spelt out only on the error path: this runs for every player.
    """
    if not isinstance(user, dict):
        raise BadRequest(f"users[{i}]", "must be a JSON object")
    user_type = user.get("user_type")
    if user_type not in USER_TYPES or not isinstance(user_type, str):
        problem = "is required" if "user_type" not in user else f"must be one of {USER_TYPES}"
        raise BadRequest(f"users[{i}].user_type", problem)
    data = user.get("user_data")
    if not isinstance(data, dict):
        problem = "is required" if "user_data" not in user else "must be a JSON object"
        raise BadRequest(f"users[{i}].user_data", problem)
    if user_type == "ip_address":
        return _ip_position(data, i)
    return Position(_coordinate(data, "latitude", 90, i), _coordinate(data, "longitude", 180, i))


def _ip_position(data: dict, i: int) -> Position | None:
    text = data.get("ip_address")
    valid, position = parse_and_locate_ip(text) if isinstance(text, str) else (False, None)
    if not valid:
        problem = "is required" if "ip_address" not in data else "must be an IPv4 or IPv6 address"
        raise BadRequest(f"users[{i}].user_data.ip_address", problem)
    return position


def _coordinate(data: dict, key: str, bound: float, i: int) -> float:
    value = data.get(key)
    if type(value) is float or type(value) is int:  # bool is an int subclass: excluded here
        if -bound <= value <= bound:
            return float(value)
        problem = f"must be within [-{bound}, {bound}]"
    else:
        problem = "is required" if key not in data else "must be a number"
    raise BadRequest(f"users[{i}].user_data.{key}", problem)


def _environment_variables(body: dict) -> None:
    for i, variable in enumerate(_array(body, "environment_variables")):
        where = f"environment_variables[{i}]"
        variable = _object(variable, where)
        _string(variable, "key", where)
        _string(variable, "value", where)
        if "is_hidden" not in variable:
            raise BadRequest(f"{where}.is_hidden", "is required")
        if not isinstance(variable["is_hidden"], bool):
            raise BadRequest(f"{where}.is_hidden", "must be a boolean")


def _webhooks(body: dict) -> dict[str, str]:
    webhooks = {}
    for name in WEBHOOKS:
        if name in body:
            hook = _object(body[name], name)
            url = _string(hook, "url", name)
            if not _is_http_url(url):
                raise BadRequest(f"{name}.url", "must be an http or https URL")
            webhooks[name] = url
    return webhooks


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        return parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:
        return False
