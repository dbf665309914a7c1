"""Small pieces every view shares: a pydantic model as a JSON response."""

from __future__ import annotations

from flask import Response
from pydantic import BaseModel


def json_response(model: BaseModel, *, status: int = 200) -> Response:
    return Response(model.model_dump_json(), status=status, mimetype="application/json")
