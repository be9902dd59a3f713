"""Pydantic request and response schemas of the API (``XRead``, ``XCreate``, ``XUpdate``)."""

from typing import Annotated

from pydantic import Field

#: An id of a database row (PostgreSQL integer): larger values are refused as input errors, not database errors.
MAX_ID = 2_147_483_647
DbId = Annotated[int, Field(ge=1, le=MAX_ID)]
