"""The API token: read from EDGEGAP_API_TOKEN, sent in a header, never shown.

The token is organisation-wide and starts billed servers, so it is never printed,
logged, written to a results folder or shown in the web UI: code outside this
module handles it only to build a request's Authorization header, and records
only whether one was set (`token_set` in the manifest). tests/test_safety.py runs
a whole scenario with a recognisable token and searches every output for it.

    authorization(request_token())   # {"Authorization": "token <value>"}
"""

from __future__ import annotations

import os

TOKEN_VARIABLE = "EDGEGAP_API_TOKEN"  # noqa: S105 (the variable's name, not a token)
LOCAL_TOKEN = "edgebench-local"  # noqa: S105 (sent to a loopback emulator when no token is set)


def api_token() -> str | None:
    """api_token reads EDGEGAP_API_TOKEN, tolerating a doubled "token " prefix."""
    token = os.environ.get(TOKEN_VARIABLE, "").strip()
    while token.lower().startswith("token "):
        token = token[6:].strip()
    return token or None


def request_token() -> str:
    """request_token is the token to send: the user's, else a stand-in for the emulator."""
    return api_token() or LOCAL_TOKEN


def authorization(token: str) -> dict[str, str]:
    """authorization is the header Edgegap reads the token from."""
    return {"Authorization": f"token {token}"}
