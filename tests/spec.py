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


LOCATION = {
    "type": "object",
    "required": ["city", "country", "continent", "latitude", "longitude"],
    "properties": {"latitude": {"type": "number"}, "longitude": {"type": "number"}},
}
PORT = {
    "type": "object",
    "required": ["name", "link", "internal", "external", "protocol", "tls_upgrade"],
}
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
        "request_id": {"type": "string"},
        "current_status": {
            "enum": [
                "Status.SEEKING",
                "Status.DEPLOYING",
                "Status.READY",
                "Status.ERROR",
                "Status.TERMINATING",
                "Status.TERMINATED",
            ]
        },
        "running": {"type": "boolean"},
        "error": {"type": "boolean"},
        "elapsed_time": {"type": "integer"},
        "ports": {"type": "object", "additionalProperties": PORT},
        "location": {"oneOf": [{"type": "null"}, LOCATION]},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
}
LIST_SCHEMA = {
    "type": "object",
    "required": ["data", "total_count"],
    "properties": {
        "total_count": {"type": "integer"},
        "data": {
            "type": "array",
            "items": {
                "type": "object",
                "required": [
                    "request_id",
                    "fqdn",
                    "public_ip",
                    "ready",
                    "start_time",
                    "ports",
                    "tags",
                ],
            },
        },
    },
}
MESSAGE_SCHEMA = {
    "type": "object",
    "required": ["message"],
    "properties": {"message": {"type": "string"}},
}
