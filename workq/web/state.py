"""What every request of one dashboard app shares, kept in `app.extensions` so views need no globals."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from flask import current_app

from workq.client import Client

EXTENSION = "workq"


@dataclass(frozen=True)
class Dashboard:
    """The Client the app reads and repairs through, its clock (injected for tests) and its CSRF token."""

    client: Client
    csrf_token: str
    clock: Callable[[], float] = time.time

    def now(self) -> int:
        return int(self.clock())


def dashboard() -> Dashboard:
    """The `Dashboard` of the app handling the current request."""
    return cast(Dashboard, current_app.extensions[EXTENSION])
