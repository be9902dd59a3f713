"""Pydantic request and response schemas of the API (``XRead``, ``XCreate``, ``XUpdate``)."""

from typing import Annotated, Any

from pydantic import BaseModel, Field

#: An id of a database row (PostgreSQL integer): larger values are refused as input errors, not database errors.
MAX_ID = 2_147_483_647
DbId = Annotated[int, Field(ge=1, le=MAX_ID)]


class ErrorRead(BaseModel):
    detail: str


class FieldError(BaseModel):
    field: str = Field(description="Where: body.x, query.y, path.z")
    message: str


class ValidationErrorRead(BaseModel):
    detail: str
    errors: list[FieldError]


#: The error answers every API route may give, documented once (routes add their own successes).
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorRead, "description": "The body cannot be read (not UTF-8, not JSON or form data)"},
    401: {"model": ErrorRead, "description": "Not authenticated, or the token expired or was revoked"},
    403: {"model": ErrorRead, "description": "Your role or site scope does not allow this"},
    404: {"model": ErrorRead, "description": "No such object within your scope"},
    409: {"model": ErrorRead, "description": "Conflicts with the current state"},
    413: {"model": ErrorRead, "description": "Request body too large"},
    422: {"model": ValidationErrorRead, "description": "Invalid input; `errors` names each field"},
}
