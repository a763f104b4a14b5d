"""Choosing deployments: GET /v1/deployments' `query` and POST /v1/deployments/bulk-stop's filters.

The list's `query` is a JSON text (../shared/spec/edgegap-api-notes.md, after Edgegap's
MCP server):

    {"filters": [{"field": "tags", "operator": "in", "value": ["eu", "ranked"]}],
     "order_by": [{"field": "created_at", "order": "desc"}]}

fields status, request_id, tags, created_at, application, version, fleet_name,
host_name; operators eq and neq (every field but created_at, which takes eq, gte and
lte), in and nin with an array (request_id, tags, application, version, fleet_name,
host_name), ilike with % wildcards (fleet_name, host_name); at most one filter a field.
Bulk-stop's filters have another shape: {"field": "request_id" | "deployment_tags",
"values": [...], "filter_type": "any" | "all" | "not"}. Anything else is a 400 naming the
offending part.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

import orjson

from emulator._platform import Deployment
from emulator._validation import BadRequest

LIST_FIELDS = {
    "status": ("eq", "neq"),
    "request_id": ("eq", "neq", "in", "nin"),
    "tags": ("eq", "neq", "in", "nin"),
    "created_at": ("eq", "gte", "lte"),
    "application": ("eq", "neq", "in", "nin"),
    "version": ("eq", "neq", "in", "nin"),
    "fleet_name": ("eq", "neq", "in", "nin", "ilike"),
    "host_name": ("eq", "neq", "in", "nin", "ilike"),
}
ORDER_FIELDS = ("created_at", "available_session_sockets")
Predicate = Callable[[Deployment, float], bool]  # (deployment, its creation as unix time)


class ListQuery:
    """ListQuery is a parsed `query`: which deployments it keeps, and in which order."""

    def __init__(self, predicates: list[Predicate], order: list[tuple[str, bool]]) -> None:
        self.predicates, self.order = predicates, order

    def keeps(self, dep: Deployment, created_unix: float) -> bool:
        return all(predicate(dep, created_unix) for predicate in self.predicates)

    def sorted(self, deployments: list[Deployment]) -> list[Deployment]:
        """sorted orders by each order_by key, last key first (a stable sort per key)."""
        for field, descending in reversed(self.order):
            if field == "created_at":
                deployments = sorted(deployments, key=lambda d: d.created_at, reverse=descending)
        return deployments  # a deployment runs one match: its available sockets are all equal


def parse_list_query(text: str | None) -> ListQuery:
    """parse_list_query reads the `query` parameter; BadRequest names what is wrong."""
    if text is None or not text.strip():
        return ListQuery([], [])
    try:
        query = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise BadRequest("query", "is not valid JSON") from None
    if not isinstance(query, dict) or set(query) - {"filters", "order_by"}:
        raise BadRequest("query", "must be an object with filters and order_by")
    filters = _list(query, "filters")
    seen: set[str] = set()
    predicates = [_filter(item, i, seen) for i, item in enumerate(filters)]
    order = [_order(item, i) for i, item in enumerate(_list(query, "order_by"))]
    return ListQuery(predicates, order)


def _list(query: dict, key: str) -> list:
    value = query.get(key, [])
    if not isinstance(value, list):
        raise BadRequest(f"query.{key}", "must be an array")
    return value


def _filter(item: object, i: int, seen: set[str]) -> Predicate:
    where = f"query.filters[{i}]"
    if not isinstance(item, dict) or set(item) != {"field", "operator", "value"}:
        raise BadRequest(where, "must have field, operator and value")
    field, operator, value = item["field"], item["operator"], item["value"]
    if field not in LIST_FIELDS:
        raise BadRequest(f"{where}.field", f"must be one of {', '.join(LIST_FIELDS)}")
    if operator not in LIST_FIELDS[field]:
        raise BadRequest(f"{where}.operator", f"{field} takes {', '.join(LIST_FIELDS[field])}")
    if field in seen:
        raise BadRequest(f"{where}.field", f"{field} is filtered already: one filter a field")
    seen.add(field)
    many = operator in ("in", "nin")
    if many != isinstance(value, list) or not all(isinstance(v, str) for v in _each(value)):
        shape = "an array of strings" if many else "a string"
        raise BadRequest(f"{where}.value", f"must be {shape} for {operator}")
    if field == "created_at":
        return _created(operator, _moment(value, f"{where}.value"))
    return _matching(field, operator, value)


def _each(value: object) -> list:
    return value if isinstance(value, list) else [value]


def _moment(text: str, where: str) -> float:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(where, "must be an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise BadRequest(where, "must give its time zone, e.g. 2026-11-28T12:00:00Z")
    return moment.timestamp()


def _created(operator: str, moment: float) -> Predicate:
    if operator == "gte":
        return lambda dep, created: created >= moment
    if operator == "lte":
        return lambda dep, created: created <= moment
    return lambda dep, created: abs(created - moment) < 1e-3


def _matching(field: str, operator: str, value) -> Predicate:
    values_of = FIELD_VALUES[field]
    if operator == "ilike":
        pattern = re.compile("^" + ".*".join(map(re.escape, value.split("%"))) + "$", re.IGNORECASE)
        return lambda dep, _: any(pattern.match(v) for v in values_of(dep))
    wanted = set(_each(value))
    if operator in ("eq", "in"):
        return lambda dep, _: bool(wanted & values_of(dep))
    return lambda dep, _: not wanted & values_of(dep)


def _order(item: object, i: int) -> tuple[str, bool]:
    where = f"query.order_by[{i}]"
    if not isinstance(item, dict) or item.get("field") not in ORDER_FIELDS:
        raise BadRequest(f"{where}.field", f"must be one of {', '.join(ORDER_FIELDS)}")
    order = item.get("order", "asc")
    if order not in ("asc", "desc"):
        raise BadRequest(f"{where}.order", "must be asc or desc")
    return item["field"], order == "desc"


def status_name(dep: Deployment) -> str:
    """status_name is a status as the query spells it: Status.READY -> "ready"."""
    return dep.status.value.removeprefix("Status.").lower()


FIELD_VALUES: dict[str, Callable[[Deployment], set[str]]] = {
    "status": lambda dep: {status_name(dep)},
    "request_id": lambda dep: {dep.request_id},
    "tags": lambda dep: set(dep.tags),
    "application": lambda dep: {dep.application},
    "version": lambda dep: {dep.version},
    "fleet_name": lambda dep: {dep.host.fleet} if dep.host else set(),
    "host_name": lambda dep: {dep.host.id} if dep.host else set(),
}


def parse_bulk_stop(body: object) -> Callable[[Deployment], bool]:
    """parse_bulk_stop reads bulk-stop's body: which deployments it stops (all filters hold)."""
    if not isinstance(body, dict) or not isinstance(body.get("filters"), list):
        raise BadRequest("filters", "is required: an array of {field, values, filter_type}")
    if not body["filters"]:
        raise BadRequest("filters", "must have at least 1 item")
    tests = [_bulk_filter(item, i) for i, item in enumerate(body["filters"])]
    return lambda dep: all(test(dep) for test in tests)


def _bulk_filter(item: object, i: int) -> Callable[[Deployment], bool]:
    where = f"filters[{i}]"
    if not isinstance(item, dict) or set(item) != {"field", "values", "filter_type"}:
        raise BadRequest(where, "must have field, values and filter_type")
    field, values, kind = item["field"], item["values"], item["filter_type"]
    if field not in ("request_id", "deployment_tags"):
        raise BadRequest(f"{where}.field", "must be request_id or deployment_tags")
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        raise BadRequest(f"{where}.values", "must be a non-empty array of strings")
    if kind not in ("any", "all", "not"):
        raise BadRequest(f"{where}.filter_type", "must be any, all or not")
    wanted = {v.strip() for v in values}
    values_of = FIELD_VALUES["request_id" if field == "request_id" else "tags"]
    if kind == "any":
        return lambda dep: bool(wanted & values_of(dep))
    if kind == "all":
        return lambda dep: wanted <= values_of(dep)
    return lambda dep: not wanted & values_of(dep)
