"""How the read-only commands print: aligned tables (with a PROBLEM column when an entry is bad), JSON, page
footers, and times as people read them."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence

from workq.cli.common import EXIT_OK, UsageError
from workq.client import Client
from workq.entry_checks import LAST_EPOCH, PAGE_SIZE

CELL_WIDTH = 60
PROBLEM_WIDTH = 200
"""A bad entry's problem is printed whole (up to this), since it is what the reader has to act on."""


def requested_page(args: argparse.Namespace) -> int:
    if args.page < 1:
        raise UsageError(f"--page must be >= 1, got {args.page}")
    return int(args.page)


def print_table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], *, empty: str, problems: Sequence[str] = ()
) -> None:
    """Aligned columns; when any row is a bad entry, a last PROBLEM column says what is wrong with it."""
    if not rows:
        print(f"({empty})")
        return
    cells = [[_cell(value) for value in row] for row in rows]
    if any(problems):
        headers = [*headers, "PROBLEM"]
        cells = [[*row, _cell(problem, PROBLEM_WIDTH)] for row, problem in zip(cells, problems, strict=True)]
    widths = [max(len(header), *(len(row[index]) for row in cells)) for index, header in enumerate(headers)]
    for row in [list(headers), *cells]:
        print("  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)).rstrip())


def print_pages(page: int, total: int, what: str) -> None:
    pages = max(1, -(-total // PAGE_SIZE))
    print(f"\npage {page} of {pages}; {total} {what}")


def print_json(value: object) -> int:
    print(json.dumps(value, ensure_ascii=False, indent=2))
    return EXIT_OK


def nothing(client: Client, what: str, total: int = 0) -> str:
    """What an empty table says: past the last page, or nothing at all in this namespace (and how to look in
    another, since an unset --namespace silently means `workq`)."""
    if total:
        return f"nothing on this page; {total} in all"
    return f"{what} in namespace {client.namespace!r}; for another namespace pass --namespace NS or set WORKQ_NAMESPACE"


def compact_json(value: object) -> str:
    try:
        return json.dumps(value, ensure_ascii=False)
    except (RecursionError, ValueError):
        return "(nested too deep to show)"


def when(epoch: int) -> str:
    if not epoch:
        return "-"
    if not 0 < epoch <= LAST_EPOCH:
        return "not a time"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch))


def ago(now: int, epoch: int, suffix: str = "s ago") -> str:
    return f"{now - epoch} {suffix}" if 0 < epoch <= LAST_EPOCH else when(epoch)


def _cell(value: object, width: int = CELL_WIDTH) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= width else text[: width - 1] + "…"
