"""The report tests use the API test world (two sites, a user per role) with a month of known alarm history
(tests/reports/world.py), built once per module in a database of its own (the report builders only read)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.api.conftest import Template, _create_db, _drop_db, api_template  # noqa: F401 - a pytest fixture
from tests.reports import world as month


@pytest.fixture(scope="module")
def month_db(pg_admin_url: str, api_template: Template) -> Iterator[tuple[str, dict]]:  # noqa: F811 - fixture
    """(url, ids) of a database holding the API world and March 2026's known alarm history."""
    name = f"ehs_rep_{uuid.uuid4().hex[:10]}"
    url = _create_db(pg_admin_url, name, template=api_template.name)
    ids = month.build(url)
    yield url, {**api_template.ids, **ids}
    _drop_db(pg_admin_url, name)
