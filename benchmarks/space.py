"""One measurement's corner of the shared Redis: every key of every system measured lives under one prefix.

Imported by the harness and by producers and workers in the peers' virtualenv, so only the standard library here.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from benchmarks.effect import REDIS_URL_ENV, RESULTS_ENV, ResultKeys

RQ_PREFIX_ENV = "RQ_KEY_PREFIX"
DRAMATIQ_NAMESPACE_ENV = "WORKQ_BENCH_DRAMATIQ_NS"
ARQ_QUEUE_ENV = "WORKQ_BENCH_ARQ_QUEUE"
SAQ_QUEUE_ENV = "WORKQ_BENCH_SAQ_QUEUE"
ROOT_PREFIX = "workq-bench"
RQ_QUEUE = "bench"
DRAMATIQ_QUEUE = "bench"


@dataclass(frozen=True)
class Space:
    """Key names of one measurement; `delete_patterns` match all of them, so clean-up is a SCAN per pattern."""

    prefix: str

    @classmethod
    def new(cls, label: str, root: str = ROOT_PREFIX) -> Space:
        return cls(f"{root}:{label}-{secrets.token_hex(4)}")

    @property
    def delete_patterns(self) -> list[str]:
        """Our prefix, and the keys arq and saq build around the queue name and job ids we give them
        (`arq:job:<our id>`, `saq:<our queue>:queued`…)."""
        return [f"{self.prefix}:*", f"arq:*:{self.prefix}:*", f"saq:*{self.prefix}:*"]

    @property
    def workq_namespace(self) -> str:
        return f"{self.prefix}:workq"

    @property
    def rq_prefix(self) -> str:
        return f"{self.prefix}:rq"

    @property
    def dramatiq_namespace(self) -> str:
        return f"{self.prefix}:dramatiq"

    @property
    def arq_queue(self) -> str:
        return f"{self.prefix}:arq"

    @property
    def saq_queue(self) -> str:
        return f"{self.prefix}:saq"

    @property
    def raw_queue(self) -> str:
        return f"{self.prefix}:raw:queue"

    def raw_in_progress(self, worker: int) -> str:
        return f"{self.prefix}:raw:inprogress:{worker}"

    @property
    def results(self) -> ResultKeys:
        return ResultKeys(f"{self.prefix}:results")

    def environment(self, redis_url: str) -> dict[str, str]:
        """Variables every producer and worker process of this measurement runs with."""
        return {
            REDIS_URL_ENV: redis_url,
            RESULTS_ENV: self.results.prefix,
            RQ_PREFIX_ENV: self.rq_prefix,
            DRAMATIQ_NAMESPACE_ENV: self.dramatiq_namespace,
            ARQ_QUEUE_ENV: self.arq_queue,
            SAQ_QUEUE_ENV: self.saq_queue,
        }
