"""What a run may do to the target: loopback hosts freely, the real API only with its checks.

A run against a non-loopback host (the real Edgegap API starts real, billed game
servers with an organisation-wide token) needs the token, has a deployment budget
by default, stops every deployment it created at the end, and refuses exceed mode
unless the user says they mean it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from ipaddress import ip_address
from urllib.parse import urlsplit

from edgebench._errors import EdgebenchError
from edgebench.realapi.token import api_token

BASE_URL_VARIABLE = "EDGEGAP_BASE_URL"  # as Edgegap's own tools read it
REMOTE_DEFAULT_MAX_DEPLOYMENTS = 20


def is_loopback(url: str) -> bool:
    """is_loopback is whether a URL names this machine (127.0.0.0/8, ::1, localhost).

    >>> is_loopback("http://127.0.0.1:8787"), is_loopback("http://[::1]:80")
    (True, True)
    >>> is_loopback("https://api.edgegap.com"), is_loopback("http://10.0.0.7")
    (False, False)
    """
    name = urlsplit(url).hostname or ""
    if name == "localhost":
        return True
    try:
        return ip_address(name).is_loopback
    except ValueError:
        return False


def target_host(given: str | None, scenario_host: str | None) -> str | None:
    """target_host is --host, else EDGEGAP_BASE_URL, else the scenario's (None: the emulator)."""
    return given or os.environ.get(BASE_URL_VARIABLE) or scenario_host


@dataclass(frozen=True)
class Policy:
    """Policy is what the checks decided for a run."""

    remote: bool
    max_deployments: int  # 0: no budget
    cleanup: bool


def decide(
    host: str | None,
    mode: str,
    max_deployments: int | None,
    cleanup: bool | None,
    allow_exceed: bool,
) -> Policy:
    """decide applies the rules for a run's host, or raises EdgebenchError naming the fix."""
    remote = host is not None and not is_loopback(host)
    if remote and urlsplit(host).scheme not in ("https", "http"):
        raise EdgebenchError(f"--host {host}: not an http(s) URL; e.g. https://api.edgegap.com")
    if remote and api_token() is None:
        raise EdgebenchError(
            f"--host {host} is not a loopback address: it needs EDGEGAP_API_TOKEN; "
            "export your Edgegap API token first"
        )
    if remote and mode == "exceed" and not allow_exceed:
        raise EdgebenchError(
            f"exceed mode against {host} sends past the API's limit on purpose; "
            "pass --i-mean-to-exceed if you do"
        )
    if max_deployments is None:
        max_deployments = REMOTE_DEFAULT_MAX_DEPLOYMENTS if remote else 0
    return Policy(remote, max_deployments, remote if cleanup is None else cleanup)
