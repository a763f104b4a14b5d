"""The baseline: a bare JSON endpoint on the emulator's own server stack (Starlette, uvicorn).

GET /count is how many deployments it has answered, so a benchmark can read the rate a
generator reaches at the target over any window, the same way for every generator.
"""

from __future__ import annotations

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

_answered = [0]  # also the last request_id's number


async def deploy(request: Request) -> Response:
    await request.body()
    _answered[0] += 1
    body = orjson.dumps({"request_id": f"{_answered[0]:012x}"})
    return Response(body, 202, media_type="application/json")


async def count(_request: Request) -> Response:
    return JSONResponse({"answered": _answered[0]})


app = Starlette(
    routes=[
        Route("/v2/deployments", deploy, methods=["POST"]),
        Route("/count", count, methods=["GET"]),
    ]
)
