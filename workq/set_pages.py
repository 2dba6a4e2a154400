"""Pages of the scheduled, retry and dead sets, each entry as its view (`ScheduledJob`, `RetryJob`, `DeadJob`)."""

from __future__ import annotations

from workq.connection import translated_faults
from workq.entry_checks import PAGE_SIZE, View, check_page, listed
from workq.job import DeadJob, RetryJob, ScheduledJob
from workq.namespace_handle import NamespaceHandle
from workq.scheduled_split import ScheduledKind, page_of


class SetPages(NamespaceHandle):
    """The `Client` methods that list the sorted sets a page (`PAGE_SIZE` entries) at a time."""

    def scheduled_jobs(self, page: int = 1, *, kind: ScheduledKind = "all") -> tuple[list[ScheduledJob], int]:
        """A page of scheduled jobs, soonest first, and how many there are in all. `kind="one_off"` leaves the
        ticks of cron schedules out, `kind="cron"` lists only them (see `workq.scheduled_split`)."""
        if kind == "all":
            return self._page(self.keys.scheduled, ScheduledJob, "run_at", page, newest_first=False)
        if kind not in ("one_off", "cron"):
            raise ValueError(f"kind must be 'all', 'one_off' or 'cron', got {kind!r}")
        check_page(page)
        with translated_faults(self.redis):
            entries, total = page_of(self.redis, self.keys.scheduled, page, PAGE_SIZE, kind)
        return [listed(member, score, ScheduledJob, "run_at") for member, score in entries], total

    def retry_jobs(self, page: int = 1) -> tuple[list[RetryJob], int]:
        """A page of jobs waiting to retry, next retry first, and how many there are in all."""
        return self._page(self.keys.retry, RetryJob, "retry_at", page, newest_first=False)

    def dead_jobs(self, page: int = 1) -> tuple[list[DeadJob], int]:
        """A page of dead jobs, most recently died first, and how many there are in all."""
        return self._page(self.keys.dead, DeadJob, "died_at", page, newest_first=True)

    def _page(
        self, zset: str, view: type[View], score_field: str, page: int, *, newest_first: bool
    ) -> tuple[list[View], int]:
        check_page(page)
        start = (page - 1) * PAGE_SIZE
        with translated_faults(self.redis):
            pipe = self.redis.pipeline(transaction=False)
            pipe.zrange(zset, start, start + PAGE_SIZE - 1, desc=newest_first, withscores=True)
            pipe.zcard(zset)
            members, total = pipe.execute()
        jobs = [listed(member, score, view, score_field) for member, score in members]
        return jobs, int(total)
