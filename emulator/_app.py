"""The emulator as an ASGI app: Edgegap's routes over the capacity model.

Every API request goes through the same steps, in this order:
injected faults -> auth (401) -> rate limit (429) -> body checks (400) -> the model.
The order is emulator._model's ApiModel (admit for every route, deploy for the two
deploy routes), which the simulator calls too; this module adds what only HTTP has:
reading the bytes, the other routes' work, writing the answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from emulator._clock import PlatformClock
from emulator._errors import ConfigError
from emulator._metrics import Metrics, PrometheusView
from emulator._model import NO_ANSWER, Answer, ApiModel, EmulatorConfig, parse_preload
from emulator._platform import DeployRequest, Status, StopOutcome
from emulator._query import parse_bulk_stop, parse_list_query
from emulator._ratelimit import DEPLOY_GROUP, FLEET_DEPLOY_GROUP
from emulator._validation import BadRequest, parse_deploy, parse_fleet_deploy
from emulator._views import (
    app_version,
    application,
    container_logs,
    fleet_host,
    list_item,
    pagination,
    status_body,
)
from emulator._webhooks import WebhookSender
from geo import warm_up

# The ticker sleeps until the next transition, within these bounds: requests advance
# the platform themselves, the ticker is for webhooks when no request comes.
TICK_MIN_S, TICK_MAX_S = 0.005, 0.05
UNKNOWN_REQUEST_ID = "Bad Request ID provided"
Handler = Callable[[Request, float], Awaitable[Response]]


class JSONResponse(Response):
    """JSONResponse sends bytes already encoded by orjson, with the fewest header steps."""

    def __init__(self, content: bytes, status: int, headers: dict[str, str] | None = None):
        self.status_code = status
        self.body = content
        self.background = None
        self.raw_headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(content)).encode()),
        ]
        if headers:
            self.raw_headers += [(k.lower().encode(), v.encode()) for k, v in headers.items()]


def json_response(status: int, body: object, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(orjson.dumps(body), status, headers)


def raw_header(request: Request, name: bytes) -> str | None:
    """raw_header reads one header straight from the ASGI scope (names arrive lowercased)."""
    for key, value in request.scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def error(status: int, message: str, **details: str) -> Response:
    body: dict = {"message": message}
    if details:
        body["details"] = details
    return json_response(status, body)


class DroppedConnection(Response):
    """DroppedConnection starts a response and never finishes it: the server closes the socket."""

    def __init__(self) -> None:
        super().__init__(status_code=0)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", b"64")],
        }
        await send(start)


@functools.lru_cache(maxsize=1024)
def parse_token(header: str | None) -> str | None:
    """parse_token reads `Authorization: token <value>`; None when missing or malformed.

    Cached: a load test sends the same header thousands of times.
    """
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() != "token" or not value or len(value.split()) != 1:
        return None
    return value


class Emulator:
    """Emulator holds one emulated platform's state and answers its routes."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.clock = PlatformClock(config.time_scale)
        self.model = ApiModel(config)
        self.platform = self.model.platform
        self.metrics = Metrics()
        self.webhooks = WebhookSender(self.metrics, config.webhook_timeout_s)
        self.reset()

    def reset(self) -> None:
        """reset makes the emulator as it started: no deployments, counters, windows or draws."""
        self.model.reset()
        self.metrics.reset()
        self.clock.restart()

    # Time -----------------------------------------------------------------

    def advance(self) -> float:
        """advance brings the platform to now and sends the webhooks that became due."""
        now = self.clock.now()
        self.platform.advance(now)
        self._send_webhooks()
        return now

    def _send_webhooks(self) -> None:
        for event, dep, when in self.platform.drain_outbox():
            body = orjson.dumps(status_body(dep, self.clock, when))
            self.webhooks.submit(dep.webhooks[event], body)

    async def tick_forever(self) -> None:
        """tick_forever runs transitions on time even when no request comes."""
        while True:
            self.advance()
            due = self.platform.next_event_at()
            wait = TICK_MAX_S
            if due is not None:
                wait = min(wait, self.clock.wall_delay(due - self.clock.now()))
            await asyncio.sleep(max(TICK_MIN_S, wait))

    # Requests ---------------------------------------------------------------

    def api(self, route: str, group: str, handler: Handler) -> Callable:
        """api is a route whose work is handler's, once ApiModel.admit let the request in."""
        return self._timed(route, functools.partial(self._respond, group=group, handler=handler))

    def deploys(self, route: str, group: str, parse: Callable[[object], DeployRequest]):
        """deploys is a deploy route: ApiModel.deploy's answer to the body parse checks."""
        return self._timed(route, functools.partial(self._deploy, group=group, parse=parse))

    def _timed(self, route: str, respond: Callable[[Request], Awaitable[Response]]) -> Callable:
        async def endpoint(request: Request) -> Response:
            started = time.perf_counter()
            response = await respond(request)
            status = response.status_code or "dropped"
            self.metrics.record(route, status, time.perf_counter() - started)
            return response

        return endpoint

    async def _fault(self) -> str | None:
        """_fault draws the request's injected fault and waits its delay."""
        delay, fault = self.model.fault()
        if delay:
            await asyncio.sleep(delay)
        return fault

    async def _respond(self, request: Request, group: str, handler: Handler) -> Response:
        fault = await self._fault()
        token = parse_token(raw_header(request, b"authorization"))
        refused = self.model.admit(fault, token, group)
        if refused is not None:
            return answer_response(refused)
        now = self.advance()
        try:
            response = await handler(request, now)
            return DroppedConnection() if fault == "lost" else response  # done, then lost
        except BadRequest as exc:
            return error(400, f"Invalid request: {exc}", field=exc.field, reason=exc.reason)
        finally:
            self._send_webhooks()

    async def _deploy(self, request: Request, group: str, parse) -> Response:
        fault = await self._fault()
        token = parse_token(raw_header(request, b"authorization"))
        body = await self._body(request)
        try:
            answer = self.model.deploy(fault, token, group, lambda: parse(body()), self.advance)
        finally:
            self._send_webhooks()
        return answer_response(answer)

    async def _body(self, request: Request) -> Callable[[], object]:
        """_body reads the bytes now and decodes them when called: a bad body is a 400 only
        for a request the limits let in (the API's order)."""
        try:
            raw = await self.read_bytes(request)
        except BadRequest as exc:
            problem = exc

            def refused() -> object:
                raise problem

            return refused
        return lambda: decode_json(raw)

    async def read_json(self, request: Request) -> object:
        return decode_json(await self.read_bytes(request))

    async def read_bytes(self, request: Request) -> bytes:
        """read_bytes is a JSON body's bytes, checked for its type and size."""
        content_type, content_length = b"", b""
        for key, value in request.scope["headers"]:
            if key == b"content-type":
                content_type = value
            elif key == b"content-length":
                content_length = value
        if not is_json_media_type(content_type):
            raise BadRequest("content-type", "must be application/json")
        limit = self.config.max_body_bytes
        declared = _whole_number(content_length.decode("latin-1"))
        if declared is not None and declared > limit:
            raise BadRequest("body", f"is larger than {limit} bytes")
        return await read_body(request, limit)

    async def status(self, request: Request, now: float) -> Response:
        dep = self.platform.get(request.path_params["request_id"], now)
        if dep is None:
            # The live API answers 400 here; the spec lists 404 too (docs/emulator.md, "Routes").
            return error(400, UNKNOWN_REQUEST_ID)
        return json_response(200, status_body(dep, self.clock, now))

    async def container_logs(self, request: Request, now: float) -> Response:
        dep = self.platform.get(request.path_params["request_id"], now)
        if dep is None or dep.status is Status.TERMINATED:
            return error(404, "Deployment not found")
        return json_response(200, container_logs(dep))

    async def stop(self, request: Request, now: float) -> Response:
        request_id = request.path_params["request_id"]
        outcome = self.platform.stop(request_id, now)
        if outcome is StopOutcome.UNKNOWN:
            return error(404, "Deployment not found")
        if outcome is StopOutcome.GONE:
            return error(410, "Deployment is already terminated")
        if outcome is StopOutcome.STOPPING:
            return json_response(202, {"message": "Deployment will be stopped once it is ready"})
        stopped = self.platform.get(request_id, now)
        summary = status_body(stopped, self.clock, now) if stopped else None
        message = f"{request_id} - Delete request will be processed soon"
        return json_response(200, {"message": message, "deployment_summary": summary})

    async def bulk_stop(self, request: Request, now: float) -> Response:
        chosen = parse_bulk_stop(await self.read_json(request))
        stopped = []
        for dep in self.platform.active(now):
            if not dep.terminated and chosen(dep):
                self.platform.stop(dep.request_id, now)
                stopped.append({"request_id": dep.request_id})
        return json_response(202, {"processable": stopped})

    async def list_deployments(self, request: Request, now: float) -> Response:
        page = _positive_int(request, "page", 1)
        limit = _positive_int(request, "limit", 100)
        query = parse_list_query(request.query_params.get("query"))
        if query.predicates or query.order:
            unix = self.clock.unix
            kept = [d for d in self.platform.active(now) if query.keeps(d, unix(d.created_at))]
            total, chosen = len(kept), query.sorted(kept)[(page - 1) * limit : page * limit]
        else:
            total = self.platform.active_count()
            chosen = self.platform.active(now, (page - 1) * limit, page * limit)
        body = {
            "data": [list_item(dep, self.clock, now) for dep in chosen],
            "total_count": total,
            "pagination": pagination(page, limit, total),
        }
        return json_response(200, body)

    # Applications and fleets ----------------------------------------------------

    async def list_apps(self, request: Request, now: float) -> Response:
        page = _positive_int(request, "page", 1)
        limit = _positive_int(request, "limit", 100)
        names = sorted(self.config.world.applications)
        chosen = names[(page - 1) * limit : page * limit]
        body = {
            "applications": [application(name, self.clock) for name in chosen],
            "total_count": len(names),
            "pagination": pagination(page, limit, len(names)),
        }
        return json_response(200, body)

    async def get_app(self, request: Request, now: float) -> Response:
        name = request.path_params["app_name"]
        if name not in self.config.world.applications:
            return error(404, f"Application {name} not found")
        return json_response(200, application(name, self.clock))

    async def list_versions(self, request: Request, now: float) -> Response:
        name = request.path_params["app_name"]
        versions = sorted(self.config.world.applications.get(name, ()))
        if name not in self.config.world.applications:
            return error(404, f"Application {name} not found")
        body = {
            "versions": [app_version(name, version, self.clock) for version in versions],
            "total_count": len(versions),
            "pagination": pagination(1, max(1, len(versions)), len(versions)),
        }
        return json_response(200, body)

    async def get_version(self, request: Request, now: float) -> Response:
        name, version = request.path_params["app_name"], request.path_params["version_name"]
        if not self.config.world.knows(name, version):
            return error(404, f"Application version {name} {version} not found")
        return json_response(200, app_version(name, version, self.clock))

    async def fleet_hosts(self, request: Request, now: float) -> Response:
        fleet = request.path_params["fleet_name"]
        hosts = [h for h in self.config.world.private_hosts.values() if h.fleet == fleet]
        if not hosts:
            return error(404, f"Private fleet {fleet} not found")
        used = self.platform.active_by_host()
        world = self.config.world
        data = [fleet_host(host, used.get(host.id, 0), world, self.clock) for host in hosts]
        return json_response(200, {"data": data})

    # Control ------------------------------------------------------------------

    async def metrics_endpoint(self, request: Request) -> Response:
        self.advance()
        by_location = self.platform.active_by_location()
        body = self.metrics.snapshot() | {
            "active_deployments": {
                "total": self.platform.active_count(),
                "holding_capacity": sum(by_location.values()),
                "by_location": by_location,
                "by_private_host": self.platform.active_by_host(),
            },
            "allocation_failures": dict(self.platform.failures),
            "fleet_placements": dict(self.platform.fleet_placements),
            "deployments_created": self.platform.created,
            "platform_time_s": round(self.clock.now(), 3),
            "time_scale": self.config.time_scale,
            "faults": self.model.faults.describe(),
            "config": self.describe(),
        }
        return json_response(200, body)

    async def prometheus_endpoint(self, request: Request) -> Response:
        self.advance()
        body = PrometheusView(self.metrics, self.platform).text()
        return Response(body, 200, media_type=CONTENT_TYPE_LATEST)

    def describe(self) -> dict:
        """describe is the emulator's set-up, for a run's manifest (never any token)."""
        limits = self.config.rate_limits
        return {
            "world": self.config.world.describe(),
            "seed": self.config.seed,
            "time_scale": self.config.time_scale,
            "rate_limits": asdict(limits),
            "tokens_file": self.config.accepted_tokens is not None,
            "faults": self.model.faults.describe(),
        }

    async def preload_endpoint(self, request: Request) -> Response:
        """preload_endpoint starts the platform warm (a run's window of the day): the
        deployments it finds running now (emulator._model.parse_preload's body)."""
        try:
            requests = parse_preload(orjson.loads(await request.body()))
        except orjson.JSONDecodeError:
            return error(400, "Invalid request: body is not valid JSON")
        except BadRequest as exc:
            return error(400, f"Invalid request: {exc}", field=exc.field, reason=exc.reason)
        placed = self.model.preload(requests, self.advance())
        return json_response(200, {"requested": len(requests), "placed": placed})

    async def reset_endpoint(self, request: Request) -> Response:
        self.reset()
        return json_response(200, {"message": "emulator reset"})

    async def faults_endpoint(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                changes = orjson.loads(await request.body())
                if not isinstance(changes, dict):
                    raise ConfigError("body", "must be a JSON object", 'e.g. {"error_share": 0.1}')
                self.model.faults = self.model.faults.updated(changes)
            except orjson.JSONDecodeError:
                return error(400, "Invalid request: body is not valid JSON")
            except ConfigError as exc:
                return error(400, f"Invalid request: {exc}", field=exc.key, reason=exc.problem)
        return json_response(200, self.model.faults.describe())

    def routes(self) -> list[Route]:
        api = self.api
        return [
            Route(
                "/v2/deployments",
                self.deploys("POST /v2/deployments", DEPLOY_GROUP, parse_deploy),
                methods=["POST"],
            ),
            Route(
                "/v2/private-fleets/deployments",
                self.deploys(
                    "POST /v2/private-fleets/deployments", FLEET_DEPLOY_GROUP, parse_fleet_deploy
                ),
                methods=["POST"],
            ),
            Route(
                "/v1/status/{request_id}",
                api("GET /v1/status/{request_id}", "status", self.status),
                methods=["GET"],
            ),
            Route(
                "/v1/stop/{request_id}",
                api("DELETE /v1/stop/{request_id}", "stop", self.stop),
                methods=["DELETE"],
            ),
            Route(
                "/v1/deployments",
                api("GET /v1/deployments", "list", self.list_deployments),
                methods=["GET"],
            ),
            Route(
                "/v1/deployments/bulk-stop",
                api("POST /v1/deployments/bulk-stop", "stop", self.bulk_stop),
                methods=["POST"],
            ),
            Route(
                "/v1/deployment/{request_id}/container-logs",
                api("GET /v1/deployment/{request_id}/container-logs", "logs", self.container_logs),
                methods=["GET"],
            ),
            Route("/v1/apps", api("GET /v1/apps", "apps", self.list_apps), methods=["GET"]),
            Route(
                "/v1/app/{app_name}",
                api("GET /v1/app/{app_name}", "apps", self.get_app),
                methods=["GET"],
            ),
            Route(
                "/v1/app/{app_name}/versions",
                api("GET /v1/app/{app_name}/versions", "apps", self.list_versions),
                methods=["GET"],
            ),
            Route(
                "/v1/app/{app_name}/version/{version_name}",
                api("GET /v1/app/{app_name}/version/{version_name}", "apps", self.get_version),
                methods=["GET"],
            ),
            Route(
                "/v2/private-fleets/{fleet_name}/hosts",
                api("GET /v2/private-fleets/{fleet_name}/hosts", "hosts", self.fleet_hosts),
                methods=["GET"],
            ),
            Route("/_emulator/metrics", self.metrics_endpoint, methods=["GET"]),
            Route("/metrics", self.prometheus_endpoint, methods=["GET"]),
            Route("/_emulator/reset", self.reset_endpoint, methods=["POST"]),
            Route("/_emulator/preload", self.preload_endpoint, methods=["POST"]),
            Route("/_emulator/faults", self.faults_endpoint, methods=["GET", "POST"]),
        ]


def answer_response(answer: Answer) -> Response:
    """answer_response writes the model's answer as the API does."""
    status = answer.status
    if status == NO_ANSWER:
        return DroppedConnection()
    deployment, message = answer.deployment, answer.message or ""
    if status == 202 and deployment:
        return JSONResponse(b'{"request_id":"%s"}' % deployment.request_id.encode(), 202)
    if status == 422 and deployment:
        return json_response(422, {"request_id": deployment.request_id, "message": message})
    if status == 429:
        headers = {"Retry-After": str(answer.retry_after)}
        return json_response(429, {"message": message}, headers)
    return error(status, message, **(answer.details or {}))


def decode_json(raw: bytes) -> object:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest("body", "is not valid JSON") from None


@functools.lru_cache(maxsize=64)
def is_json_media_type(content_type: bytes) -> bool:
    return content_type.split(b";")[0].strip().lower() == b"application/json"


async def read_body(request: Request, limit: int) -> bytes:
    """read_body receives the body, refusing it as soon as it outgrows limit."""
    chunks, size = [], 0
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BadRequest("body", f"is larger than {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _positive_int(request: Request, name: str, default: int) -> int:
    text = request.query_params.get(name)
    if text is None:
        return default
    number = _whole_number(text)
    if number is None or number < 1:
        raise BadRequest(name, "must be a whole number >= 1")
    return number


def _whole_number(text: str) -> int | None:
    """_whole_number parses plain ASCII digits (at most 18 of them), else None."""
    if text.isascii() and text.isdigit() and len(text) <= 18:
        return int(text)
    return None


def create_app(config: EmulatorConfig | None = None) -> Starlette:
    """create_app builds the emulator's ASGI app; `app.state.emulator` is its state.

    >>> app = create_app(EmulatorConfig(seed=7))
    """
    warm_up()
    emulator = Emulator(config or EmulatorConfig())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        await emulator.webhooks.start()
        ticker = asyncio.create_task(emulator.tick_forever())
        try:
            yield
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            await emulator.webhooks.stop()

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)  # registered for HTTP statuses only
        return error(exc.status_code, exc.detail)

    handlers: dict[Any, Any] = {404: http_error, 405: http_error}
    app = Starlette(routes=emulator.routes(), lifespan=lifespan, exception_handlers=handlers)
    app.state.emulator = emulator
    return app
