"""The scaling table's arithmetic: how many worker processes one Redis core feeds follows from Redis CPU per job."""

from __future__ import annotations

from benchmarks.measure import Accounting, ProcessingSample
from benchmarks.scaling import Figures, table


def sample(jobs_per_second: float, redis_us: float) -> ProcessingSample:
    return ProcessingSample(jobs_per_second, 400.0, redis_us, Accounting(1000, 1000, 0))


def test_one_redis_core_feeds_its_jobs_per_second_over_one_process_rate() -> None:
    one = Figures(1, [sample(1000, 100.0), sample(1200, 80.0), sample(900, 120.0)])
    two = Figures(2, [sample(1800, 90.0)])

    rows = table([one, two]).splitlines()[2:]

    # Medians: 1,000 jobs/s and 100 µs -> a core serves 10,000 jobs/s, ten processes at 1,000 jobs/s each.
    assert rows[0] == "| 1 | 1,000 | 1.00 | 400 | 100.0 | 10,000 | 10.0 |"
    assert rows[1] == "| 2 | 1,800 | 1.80 | 400 | 90.0 | 11,111 | 11.1 |"
