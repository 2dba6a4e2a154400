"""Turning `redis=` arguments and the environment into a client, and Redis faults into ConnectionFailed."""

from __future__ import annotations

from pathlib import Path

import fakeredis
import pytest
import redis

from workq.connection import describe, resolve_namespace, resolve_redis, translated_faults
from workq.errors import ConnectionFailed


def test_namespace_given_is_used_as_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKQ_NAMESPACE", "from-env")
    assert resolve_namespace("mine") == "mine"
    assert resolve_namespace("") == ""


def test_namespace_defaults_to_the_environment_then_workq(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKQ_NAMESPACE", "from-env")
    assert resolve_namespace(None) == "from-env"
    monkeypatch.delenv("WORKQ_NAMESPACE")
    assert resolve_namespace(None) == "workq"


def test_a_client_is_used_as_is(fake_redis: fakeredis.FakeRedis) -> None:
    assert resolve_redis(fake_redis) is fake_redis


def test_a_url_becomes_a_client_for_that_server() -> None:
    kwargs = resolve_redis("redis://example.org:6380/4").connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("example.org", 6380, 4)


def test_tls_urls_are_accepted() -> None:
    client = resolve_redis("rediss://example.org:6380/0")
    assert client.connection_pool.connection_class is redis.SSLConnection


def test_redis_url_defaults_to_the_environment_then_localhost(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKQ_REDIS_URL", "redis://example.org:7000/2")
    assert describe(resolve_redis(None)) == "example.org:7000/2"
    monkeypatch.delenv("WORKQ_REDIS_URL")
    assert describe(resolve_redis(None)) == "localhost:6379/0"


def test_a_bad_url_is_a_value_error_naming_it() -> None:
    with pytest.raises(ValueError, match="ftp://nowhere"):
        resolve_redis("ftp://nowhere")


def test_something_else_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        resolve_redis(6379)  # type: ignore[arg-type]


def test_describe_never_shows_the_password() -> None:
    description = describe(resolve_redis("redis://user:s3cret@example.org:6380/2"))
    assert description == "example.org:6380/2"
    assert "s3cret" not in description


def test_describe_names_a_unix_socket(tmp_path: Path) -> None:
    socket_path = tmp_path / "redis.sock"
    assert describe(resolve_redis(f"unix://{socket_path}")) == f"unix://{socket_path}"


def test_a_unix_socket_url_gives_a_usable_connection(tmp_path: Path) -> None:
    socket_path = tmp_path / "redis.sock"
    connection = resolve_redis(f"unix://{socket_path}").connection_pool.make_connection()
    assert isinstance(connection, redis.UnixDomainSocketConnection)
    assert connection.path == str(socket_path)


@pytest.mark.parametrize("fault", [redis.ConnectionError("refused"), redis.TimeoutError("slow")])
def test_redis_faults_become_connection_failed_naming_the_server(
    fake_redis: fakeredis.FakeRedis, fault: Exception
) -> None:
    with pytest.raises(ConnectionFailed, match=describe(fake_redis)) as raised, translated_faults(fake_redis):
        raise fault
    assert raised.value.__cause__ is fault


def test_other_errors_pass_through_untouched(fake_redis: fakeredis.FakeRedis) -> None:
    with pytest.raises(redis.ResponseError), translated_faults(fake_redis):
        raise redis.ResponseError("WRONGTYPE")


@pytest.mark.parametrize(
    "url",
    [
        "redis://localhost/0?bogus=1",
        "rediss://localhost/0?ssl_ca_cert=ca.pem",
        "unix:///tmp/redis.sock?socket_keepalive=true",
        "redis+sentinel://h:26379/mymaster?bogus=1x",
        "redis+cluster://h:7000?bogus=1",
        "redis://localhost/0?connection_class=x",
    ],
)
def test_an_unknown_url_option_is_a_value_error_naming_it(url: str) -> None:
    """Before: a TypeError at the first command (a cluster URL dropped the option without a word)."""
    name = url.partition("?")[2].partition("=")[0]
    with pytest.raises(ValueError, match=f"unknown option '{name}'"):
        resolve_redis(url)


def test_a_tls_option_on_a_plain_url_says_to_use_rediss() -> None:
    with pytest.raises(ValueError, match="'ssl_check_hostname' is for TLS: use a rediss:// URL"):
        resolve_redis("redis://localhost/0?ssl_check_hostname=false")


def test_sentinel_url_options_override_workq_defaults() -> None:
    client = resolve_redis("redis+sentinel://h:26379/mymaster/3?health_check_interval=5&socket_timeout=2")
    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs["health_check_interval"], kwargs["socket_timeout"], kwargs["db"]) == (5, 2.0, 3)
