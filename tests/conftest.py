"""Shared fixtures. Tests that need PostgreSQL, Redis or NATS get isolated resources per test
(a fresh schema, key prefix, stream) and clean them up. Without the services they skip, unless
PRYV_REQUIRE_SERVICES=1 (CI), where a missing service is a failure."""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

POSTGRES_URL = os.environ.get("PRYV_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("PRYV_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
NATS_URL = os.environ.get("PRYV_TEST_NATS_URL", "nats://127.0.0.1:4222")
REQUIRE_SERVICES = os.environ.get("PRYV_REQUIRE_SERVICES") == "1"


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    if _reachable(host, port):
        return
    message = f"{name} is not reachable on {host}:{port} (start it with infra/services.sh)"
    if REQUIRE_SERVICES:
        pytest.fail(message)
    pytest.skip(message)


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def postgres_schema() -> Iterator[str]:
    """A fresh PostgreSQL schema, dropped after the test."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    import psycopg

    schema = unique_name("pryv_test")
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    yield schema
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A unique Redis key prefix; every key under it is deleted after the test."""
    require_service("Redis", "127.0.0.1", 6379)
    import redis.asyncio as redis

    prefix = unique_name("pryvtest")
    yield prefix
    client = redis.from_url(REDIS_URL)
    try:
        keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture(params=["memory", "redis"])
def redis_prefix_or_none(request: pytest.FixtureRequest) -> str | None:
    """None for the in-memory backend; a fresh, cleaned-up Redis prefix otherwise.

    A sync fixture on purpose: it may call getfixturevalue on the async `redis_prefix`.
    """
    if request.param == "memory":
        return None
    prefix: str = request.getfixturevalue("redis_prefix")
    return prefix


@pytest.fixture
async def nats_stream() -> AsyncIterator[str]:
    """A unique JetStream stream name; the stream is deleted after the test."""
    require_service("NATS", "127.0.0.1", 4222)
    import nats
    from nats.js.errors import NotFoundError

    stream = unique_name("PRYVTEST").upper()
    yield stream
    nc = await nats.connect(NATS_URL)
    try:
        with contextlib.suppress(NotFoundError):
            await nc.jetstream().delete_stream(stream)
    finally:
        await nc.close()


def settings_for(kind: str, request: pytest.FixtureRequest, tmp_path: object) -> object:
    """Settings for one of the two deployments the contract suite covers."""
    from pathlib import Path

    from infra.settings import Settings

    data_dir = Path(str(tmp_path)) / "pryv"
    if kind == "embedded":
        return Settings(data_dir=data_dir, key_pepper=b"test-pepper")
    schema = request.getfixturevalue("postgres_schema")
    prefix = request.getfixturevalue("redis_prefix")
    stream = request.getfixturevalue("nats_stream")
    return Settings(
        data_dir=data_dir,
        database_url=POSTGRES_URL,
        database_schema=schema,
        redis_url=REDIS_URL,
        redis_prefix=prefix,
        nats_url=NATS_URL,
        nats_stream=stream,
        key_pepper=b"test-pepper",
    )


@pytest.fixture(params=["embedded", "services"])
def platform_settings(request: pytest.FixtureRequest, tmp_path: object) -> object:
    """{SQLite + in-process bus + in-memory} and {PostgreSQL + NATS JetStream + Redis}."""
    return settings_for(request.param, request, tmp_path)


@pytest.fixture(scope="module")
def upstream() -> Iterator[object]:
    """A fake OpenAI-compatible upstream (tests/fakes/upstream.py), one per test module."""
    from tests.fakes.upstream import running_fake_upstream

    with running_fake_upstream() as fake:
        yield fake


@pytest.fixture
def services_settings(request: pytest.FixtureRequest, tmp_path: object) -> object:
    """Only the production deployment (for behaviour that needs shared Redis, NATS, ...)."""
    return settings_for("services", request, tmp_path)


@pytest.fixture
async def platform(platform_settings: object) -> AsyncIterator[object]:
    from bootstrap.platform import open_platform

    opened = await open_platform(platform_settings)  # type: ignore[arg-type]
    yield opened
    await opened.close()
