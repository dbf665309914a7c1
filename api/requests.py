"""The API's request class: an empty query value (`?limit=`) is the same as leaving it out."""

from __future__ import annotations

from functools import cached_property

from flask import Request
from werkzeug.datastructures import ImmutableMultiDict


class ApiRequest(Request):
    """Forms and many HTTP clients send every field, filled or not; an empty value never means
    "filter by the empty string" here, so it is dropped before any view reads it."""

    @cached_property
    def args(self) -> ImmutableMultiDict[str, str]:
        given = super().args
        return ImmutableMultiDict([(k, v) for k, v in given.items(multi=True) if v != ""])
