"""Page numbers: reading `?page=N` strictly (a bad one is the caller's mistake, 400) and the links between pages."""

from __future__ import annotations

from dataclasses import dataclass

from werkzeug.exceptions import BadRequest

from workq.entry_checks import PAGE_SIZE

MAX_PAGE = 1_000_000_000
"""Beyond any real set, and small enough that the Redis range offset stays a 64-bit integer."""


def parse_page(text: str | None) -> int:
    """`?page=` as an int in 1..MAX_PAGE (absent means 1); anything else raises BadRequest saying what is wrong."""
    if text is None:
        return 1
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_PAGE:
        raise BadRequest(f"page must be a whole number from 1 to {MAX_PAGE}, got {text!r}")
    return int(text)


@dataclass(frozen=True)
class Pagination:
    """Where page `page` of `total` items sits, `PAGE_SIZE` a page."""

    page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // PAGE_SIZE))

    @property
    def first_item(self) -> int:
        return min(self.total, (self.page - 1) * PAGE_SIZE + 1)

    @property
    def last_item(self) -> int:
        return min(self.total, self.page * PAGE_SIZE)

    def links(self, around: int = 2) -> list[int | None]:
        """Page numbers to link: the first, the last and `around` either side of this one; None marks a gap of
        two pages or more (a gap of one shows that page instead)."""
        wanted = {1, self.pages, *range(self.page - around, self.page + around + 1)}
        links: list[int | None] = []
        previous = 0
        for number in sorted(number for number in wanted if 1 <= number <= self.pages):
            if number - previous == 2:
                links.append(previous + 1)
            elif number - previous > 2:
                links.append(None)
            links.append(number)
            previous = number
        return links
