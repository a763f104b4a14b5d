"""The V2 OpenAPI contract as JSON Schema validators, plus the v1 shapes from the API notes."""

from __future__ import annotations

import functools
from pathlib import Path

import jsonschema
import yaml

SPEC_PATH = Path(__file__).resolve().parents[1] / "emulator" / "spec" / "edgegap-v2.openapi.yaml"


@functools.cache
def spec() -> dict:
    return yaml.safe_load(SPEC_PATH.read_text())


def response_validator(path: str, method: str, status: int) -> jsonschema.Validator:
    operation = spec()["paths"][path][method]
    schema = operation["responses"][str(status)]["content"]["application/json"]["schema"]
    return jsonschema.Draft202012Validator({**schema, "components": spec()["components"]})


def request_schema(path: str) -> dict:
    ref = spec()["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
    return {**ref, "components": spec()["components"]}


def assert_conforms(path: str, method: str, status: int, body: object) -> None:
    """assert_conforms checks a /v2 response (path as in the spec, without /v2)."""
    response_validator(path, method, status).validate(body)


# The v1 shapes (and v2's fleet hosts), written down here from Edgegap's published v1 and v2
# OpenAPI documents (edgegap/edgegap-mcp, spec/) and ../shared/spec/edgegap-api-notes.md:
# the fields a client may rely on, their types, and which are required.
V1_TIME = {"type": "string", "pattern": r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$"}
ISO_TIME = {"type": "string", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$"}
STRING, BOOLEAN, INTEGER, NUMBER = ({"type": t} for t in ("string", "boolean", "integer", "number"))
NULLABLE_STRING = {"type": ["string", "null"]}
LOCATION = {
    "type": "object",
    "required": [
        "city",
        "country",
        "continent",
        "administrative_division",
        "timezone",
        "latitude",
        "longitude",
    ],
    "properties": {
        "city": STRING,
        "country": {"type": "string", "minLength": 3},  # a name ("Canada"), not a code
        "continent": STRING,
        "administrative_division": STRING,
        "timezone": STRING,
        "latitude": NUMBER,
        "longitude": NUMBER,
    },
}
PORT = {
    "type": "object",
    "required": ["name", "link", "internal", "external", "protocol", "tls_upgrade"],
    "properties": {
        "name": STRING,
        "link": STRING,
        "internal": {"type": "integer", "minimum": 0, "maximum": 59999},
        "external": {"type": "integer", "minimum": 0, "maximum": 59999},
        "protocol": STRING,
        "tls_upgrade": BOOLEAN,
    },
}
STATUSES = [
    "Status.SEEKING",
    "Status.DEPLOYING",
    "Status.READY",
    "Status.ERROR",
    "Status.TERMINATING",
    "Status.TERMINATED",
]
STATUS_SCHEMA = {
    "type": "object",
    "required": [
        "request_id",
        "fqdn",
        "public_ip",
        "app_name",
        "app_version",
        "current_status",
        "last_status",
        "running",
        "error",
        "error_detail",
        "start_time",
        "elapsed_time",
        "removal_time",
        "max_duration",
        "ports",
        "location",
        "tags",
        "command",
        "arguments",
    ],
    "properties": {
        "request_id": STRING,
        "fqdn": STRING,
        "public_ip": STRING,
        "app_name": STRING,
        "app_version": STRING,
        "current_status": {"enum": STATUSES},
        "last_status": {"enum": [*STATUSES, None]},
        "running": BOOLEAN,
        "error": BOOLEAN,
        "error_detail": STRING,
        "start_time": V1_TIME,
        "elapsed_time": {"type": "integer", "minimum": 0},
        "removal_time": {"oneOf": [{"type": "null"}, V1_TIME]},
        "max_duration": {"type": "integer", "minimum": -1, "maximum": 1440},
        "ports": {"type": "object", "additionalProperties": PORT},
        "location": {"oneOf": [{"type": "null"}, LOCATION]},
        "tags": {"type": "array", "items": STRING},
        "command": NULLABLE_STRING,
        "arguments": NULLABLE_STRING,
    },
}
PAGINATION = {
    "type": "object",
    "required": [
        "number",
        "next_page_number",
        "previous_page_number",
        "paginator",
        "has_next",
        "has_previous",
    ],
    "properties": {
        "number": {"type": "integer", "minimum": 0},
        "next_page_number": {"type": ["integer", "null"], "minimum": 1},
        "previous_page_number": {"type": ["integer", "null"], "minimum": 1},
        "paginator": {
            "type": "object",
            "required": ["num_pages"],
            "properties": {"num_pages": {"type": "integer", "minimum": 1}},
        },
        "has_next": BOOLEAN,
        "has_previous": BOOLEAN,
    },
}


def paginated(key: str, item: dict) -> dict:
    """paginated is a v1 list: its items under key, total_count and pagination."""
    return {
        "type": "object",
        "required": [key, "total_count", "pagination"],
        "properties": {
            key: {"type": "array", "items": item},
            "total_count": {"type": "integer", "minimum": 0},
            "pagination": PAGINATION,
        },
    }


LIST_ITEM = {
    "type": "object",
    "required": ["request_id", "fqdn", "public_ip", "ready", "start_time", "ports", "tags"],
    "properties": {
        "request_id": STRING,
        "fqdn": STRING,
        "public_ip": STRING,
        "ready": BOOLEAN,
        "start_time": V1_TIME,
        "ports": {"type": "object", "additionalProperties": PORT},
        "tags": {"type": "array", "items": STRING},
    },
}
LIST_SCHEMA = paginated("data", LIST_ITEM)
MESSAGE_SCHEMA = {
    "type": "object",
    "required": ["message"],
    "properties": {"message": STRING},
}
STOP_SCHEMA = {
    "type": "object",
    "required": ["message", "deployment_summary"],
    "properties": {"message": STRING, "deployment_summary": STATUS_SCHEMA},
}
BULK_STOP_SCHEMA = {
    "type": "object",
    "required": ["processable"],
    "properties": {
        "processable": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["request_id"],
                "properties": {"request_id": STRING},
            },
        }
    },
}
LOGS_SCHEMA = {
    "type": "object",
    "required": ["logs", "crash_logs", "crash_data", "logs_link"],
    "properties": {
        "logs": STRING,
        "crash_logs": NULLABLE_STRING,
        "crash_data": {"type": ["object", "null"]},
        "encoding": STRING,
        "logs_link": NULLABLE_STRING,
    },
}
APPLICATION = {
    "type": "object",
    "required": ["name", "is_active", "image", "create_time", "last_updated"],
    "properties": {
        "name": {"type": "string", "minLength": 3, "maxLength": 64},
        "is_active": BOOLEAN,
        "image": STRING,
        "create_time": V1_TIME,
        "last_updated": V1_TIME,
    },
}
APP_VERSION = {
    "type": "object",
    "required": [
        "name",
        "docker_image",
        "docker_repository",
        "docker_tag",
        "req_cpu",
        "req_memory",
    ],
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 64},
        "create_time": V1_TIME,
        "last_updated": V1_TIME,
        "is_active": BOOLEAN,
        "req_cpu": {"type": "integer", "minimum": 100},
        "req_memory": {"type": "integer", "minimum": 100},
        "docker_repository": STRING,
        "docker_image": STRING,
        "docker_tag": STRING,
        "max_duration": {"type": "integer", "minimum": -1, "maximum": 1440},
        "restart_policy": {"enum": ["always", "never", "on_failure"]},
        "ports": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["port", "protocol"],
                "properties": {"port": INTEGER, "protocol": STRING},
            },
        },
        "envs": {"type": "array"},
    },
}
APPS_SCHEMA = paginated("applications", APPLICATION)
VERSIONS_SCHEMA = paginated("versions", APP_VERSION)
FLEET_HOSTS_SCHEMA = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "data": {
            "type": "array",
            "items": {
                "type": "object",
                "required": [
                    "host_id",
                    "status",
                    "allocated_cpu_units",
                    "allocated_memory_mb",
                    "created_at",
                    "updated_at",
                    "centroid",
                    "fleet_host_specifications",
                ],
                "properties": {
                    "host_id": STRING,
                    "status": {"enum": ["PENDING", "ACTIVE"]},
                    "ip_address": NULLABLE_STRING,
                    "latitude": {"type": ["number", "null"]},
                    "longitude": {"type": ["number", "null"]},
                    "city": NULLABLE_STRING,
                    "country": NULLABLE_STRING,
                    "continent": NULLABLE_STRING,
                    "allocated_cpu_units": {"type": ["integer", "null"]},
                    "allocated_memory_mb": INTEGER,
                    "allocatable_cpu_units": {"type": ["integer", "null"]},
                    "allocatable_memory_mb": {"type": ["integer", "null"]},
                    "beacon": {"type": ["object", "null"]},
                    "created_at": ISO_TIME,
                    "updated_at": ISO_TIME,
                    "centroid": {
                        "type": "object",
                        "required": [
                            "label",
                            "latitude",
                            "longitude",
                            "radius_km",
                            "desired_host_count",
                        ],
                    },
                    "delete_schedule": {"type": ["object", "null"]},
                    "fleet_host_specifications": {
                        "type": "object",
                        "required": ["cpu_units", "memory_mb", "base_clock_speed_mhz"],
                    },
                },
            },
        }
    },
}
