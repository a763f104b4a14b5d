"""Pydantic's errors as edgebench says them: `<file>: <key>: <problem>; <fix>`."""

from __future__ import annotations

import difflib
import re
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from edgebench.plan._schema import Scenario

_FIXES = {
    "extra_forbidden": "remove it (see scenarios/README.md for the keys)",
    "missing": "add it",
    "int_type": "use a whole number",
    "float_type": "use a number",
    "string_type": "use a string in quotes",
    "bool_type": "use true or false",
    "list_type": "use a list [...]",
    "model_type": "use a table",
    "literal_error": "use one of the values listed",
    "greater_than": "use a larger value",
    "greater_than_equal": "use a larger value",
    "less_than_equal": "use a smaller value",
    "too_short": "add at least one",
    "string_too_short": "use a non-empty string",
    "string_pattern_mismatch": "use letters, digits, '.', '_' or '-'",
}


def problem(path: Path, error: dict[str, Any]) -> str:
    """problem is one pydantic error of the file at path, as one line with its fix."""
    key = ".".join(str(part) for part in error["loc"]) or "(top level)"
    key = re.sub(r"\.(\d+)", r"[\1]", key)
    message = error["msg"].removeprefix("Value error, ")
    if ";" in message:
        return f"{path}: {key}: {message}"
    fix = _FIXES.get(error["type"], "see scenarios/README.md")
    if error["type"] == "extra_forbidden":
        fix = _misspelt(error["loc"]) or fix
    return f"{path}: {key}: {message[0].lower()}{message[1:]}; {fix}"


def _misspelt(loc: tuple[int | str, ...]) -> str | None:
    """_misspelt suggests the key an unknown one was probably meant to be ("weigths")."""
    model: type[BaseModel] = Scenario
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        inner = field.annotation if field else None
        inner = next(iter(typing.get_args(inner)), inner) if typing.get_args(inner) else inner
        if not (isinstance(inner, type) and issubclass(inner, BaseModel)):
            return None
        model = inner
    close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1)
    return f"did you mean {close[0]!r}?" if close else None
