"""Fixtures most unit tests share: the keys of the test's namespace and the Lua scripts, on the test's fakeredis."""

from __future__ import annotations

import fakeredis
import pytest

from workq.keys import Keys
from workq.scripts import Scripts


@pytest.fixture
def keys(namespace: str) -> Keys:
    return Keys(namespace)


@pytest.fixture
def scripts(fake_redis: fakeredis.FakeRedis) -> Scripts:
    return Scripts.register(fake_redis)
