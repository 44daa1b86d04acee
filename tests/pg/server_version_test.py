"""The suite runs against the server it was meant to (tests/versions.py sets
RUNBOOK_TEST_EXPECT_MAJOR): a harness that silently ran on the embedded server
twice would otherwise pass and prove nothing."""

from __future__ import annotations

import os

import psycopg
import pytest

from ..conftest import PgServer


def test_the_server_is_the_major_the_run_expects(pg_server: PgServer) -> None:
    expected = os.environ.get("RUNBOOK_TEST_EXPECT_MAJOR")
    with psycopg.connect(pg_server.dsn) as conn:
        row = conn.execute("SELECT current_setting('server_version_num')::int").fetchone()
    assert row is not None
    major = row[0] // 10000
    if expected is None:
        pytest.skip(f"no RUNBOOK_TEST_EXPECT_MAJOR: running on {major}, whatever it is")
    assert major == int(expected)
