"""Bodies of the direct-upload API (`/v1/uploads`): ask for an upload URL, PUT the bytes to it."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, StrictInt

from schemas.api import ClientInput

MIME_TYPE = r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$"


class UploadIn(ClientInput):
    filename: str | None = Field(default=None, max_length=1024, description="For your records")
    content_type: str | None = Field(
        default=None,
        pattern=MIME_TYPE,
        description="The Content-Type the PUT must send (default application/octet-stream); "
        "the format is still recognised from the bytes",
    )
    bytes: StrictInt | None = Field(
        default=None, ge=0, description="Size, if known: 413 over the limit"
    )


class UploadView(BaseModel):
    object: Literal["upload"] = "upload"
    id: str
    url: str = Field(description="PUT the recording's bytes here, before `expires_at`")
    method: Literal["PUT"] = "PUT"
    headers: dict[str, str] = Field(description="Headers the PUT must carry, exactly")
    expires_at: datetime


class UploadReceived(BaseModel):
    """The answer to a PUT served by the API itself (a local store)."""

    object: Literal["upload"] = "upload"
    id: str
    bytes: int
