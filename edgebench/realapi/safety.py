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


def checked_host(host: str | None, allow_remote: bool) -> str:
    """checked_host is the host a Locust process may send to: loopback, or a remote one only
    once `edgebench run` applied its checks (allow_remote); EdgebenchError otherwise."""
    if not host:
        raise EdgebenchError(
            "no host: start the emulator (edgebench emulator) and pass --host, "
            "or run through `edgebench run`"
        )
    if not (is_loopback(host) or allow_remote):
        raise EdgebenchError(
            f"--host {host}: load traffic goes only to loopback addresses (127.0.0.1, ::1); "
            "for the real API use `edgebench run`, which applies its safety checks first"
        )
    return host.rstrip("/")


def refuse_remote_without_token(host: str | None) -> None:
    """A worker sends to a host that is not loopback only as its master decided, with a token
    of its own (EDGEGAP_API_TOKEN here too: the master never sends it)."""
    if host and not is_loopback(host) and api_token() is None:
        raise EdgebenchError(
            f"the master's host {host} is not loopback and EDGEGAP_API_TOKEN is not set on "
            "this worker: set it (from the same secret as the master's)"
        )


def refuse_another_scenario(source: str, digest: str, masters: str) -> None:
    """A worker reads the scenario (and the files it names) from its own copy: one whose
    digest (Scenario.inputs_digest) is not the master's would send another schedule."""
    if digest != masters:
        raise EdgebenchError(
            f"{source}: not the master's scenario (sha256 of it and the files it "
            f"reads: {digest[:12]} here, {masters[:12]} on the "
            "master): give every worker the same scenario and files (the same image or checkout)"
        )


REACH_TIMEOUT_S = 5.0


def check_reachable(host: str, token: str) -> None:
    """check_reachable asks the target for its deployments (a read: nothing is created) before
    the first send, and raises EdgebenchError when no answer comes: a run against a host
    that is not there would send for its whole duration and end in transport errors. Any
    HTTP answer (even a 401 or 404) means the host is there."""
    import httpx

    from edgebench.realapi.token import authorization

    try:
        httpx.get(
            f"{host.rstrip('/')}/v1/deployments",
            headers=authorization(token),
            timeout=REACH_TIMEOUT_S,
        )
    except httpx.TransportError as exc:
        raise EdgebenchError(
            f"cannot reach {host}: {_reason(exc)}; start the API there or fix --host "
            "(without --host, an embedded emulator runs)"
        ) from None


def _reason(error: Exception) -> str:
    """_reason is a transport error in a few words."""
    import httpx

    if isinstance(error, httpx.TimeoutException):
        return f"no answer within {REACH_TIMEOUT_S:g} s"
    text = str(error).lower()
    for known in ("connection refused", "name or service not known", "no route to host"):
        if known in text:
            return known
    return str(error) or type(error).__name__
