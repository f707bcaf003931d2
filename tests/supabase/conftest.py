"""Fixtures of the Supabase tests: a database shaped like a Supabase project's (tests/supabase_db.py)."""

from __future__ import annotations

import pytest

from tests.supabase_db import supabase_database


@pytest.fixture
def supa_pg_url(pg_url, project):
    """A fresh test database with Supabase's API roles and default grants, migrated by `elfctl db migrate`."""
    return supabase_database(pg_url, cwd=str(project))
