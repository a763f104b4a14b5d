"""The baseline: a bare JSON endpoint on the emulator's own server stack (Starlette, uvicorn)."""

from __future__ import annotations

import itertools

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

_ids = itertools.count()


async def deploy(request: Request) -> Response:
    await request.body()
    body = orjson.dumps({"request_id": f"{next(_ids):012x}"})
    return Response(body, 202, media_type="application/json")


app = Starlette(routes=[Route("/v2/deployments", deploy, methods=["POST"])])
