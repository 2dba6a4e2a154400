"""How values look on the pages, and the paging arithmetic behind the page links."""

from __future__ import annotations

import pytest
from werkzeug.exceptions import BadRequest

from workq.web.formatting import duration, percent, pretty_json, pretty_json_text, rate_level, relative, short_id, utc
from workq.web.paging import MAX_PAGE, Pagination, parse_page


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (-3, "0s"),
        (0, "0s"),
        (59, "59s"),
        (60, "1m 00s"),
        (185, "3m 05s"),
        (7800, "2h 10m"),
        (3 * 86400 + 7200, "3d 02h"),
    ],
)
def test_duration_shows_the_two_largest_units(seconds: int, shown: str) -> None:
    assert duration(seconds) == shown


def test_relative_times_read_both_ways() -> None:
    assert relative(0, 100) == "-"
    assert relative(100, 100) == "now"
    assert relative(90, 100) == "10s ago"
    assert relative(220, 100) == "in 2m 00s"


def test_utc_percent_rate_level_and_short_ids() -> None:
    assert utc(0) == "-" and utc(1_800_000_000) == "2027-01-15 08:00:00 UTC"
    assert (percent(None), percent(0.0), percent(0.0042), percent(0.25), percent(1.0)) == (
        "-",
        "0%",
        "0.4%",
        "25%",
        "100%",
    )
    assert [rate_level(rate) for rate in (None, 0.0, 0.005, 0.02, 0.5)] == ["none", "ok", "ok", "warn", "bad"]
    assert short_id("0123456789abcdef") == "01234567…" and short_id("012345678") == "012345678"


def test_json_is_indented_with_short_nested_values_kept_on_one_line() -> None:
    assert pretty_json({}) == "{}" and pretty_json({"a": []}) == '{\n  "a": []\n}'
    assert pretty_json({"sizes": [320, 1280], "n": None}) == '{\n  "sizes": [320, 1280],\n  "n": null\n}'
    long_list = list(range(30))
    assert pretty_json({"ids": long_list}).startswith('{\n  "ids": [\n    0,\n    1,')
    nested = {"user": {"name": "Ada", "tags": ["x" * 60]}}
    assert (
        pretty_json(nested)
        == '{\n  "user": {\n    "name": "Ada",\n    "tags": [\n      "' + "x" * 60 + '"\n    ]\n  }\n}'
    )
    assert pretty_json({"s": "<é>"}) == '{\n  "s": "<é>"\n}', "text stays text: the template escapes it"


def test_observation_args_are_pretty_printed_when_they_are_json() -> None:
    assert pretty_json_text('{"a": [1, 2]}') == '{\n  "a": [1, 2]\n}'
    assert pretty_json_text("") == "{}"
    assert pretty_json_text("{not json") == "{not json"


@pytest.mark.parametrize(("text", "page"), [(None, 1), ("1", 1), ("7", 7), (str(MAX_PAGE), MAX_PAGE)])
def test_parse_page_accepts_whole_numbers(text: str | None, page: int) -> None:
    assert parse_page(text) == page


@pytest.mark.parametrize("text", ["0", "-1", "+1", " 1", "1.0", "", "٣", str(MAX_PAGE + 1)])
def test_parse_page_refuses_anything_else(text: str) -> None:
    with pytest.raises(BadRequest, match="page must be a whole number"):
        parse_page(text)


@pytest.mark.parametrize(
    ("page", "total", "links"),
    [
        (1, 0, [1]),
        (1, 25, [1, 2]),
        (1, 200, [1, 2, 3, None, 10]),
        (5, 200, [1, 2, 3, 4, 5, 6, 7, None, 10]),
        (6, 200, [1, None, 4, 5, 6, 7, 8, 9, 10]),
        (10, 200, [1, None, 8, 9, 10]),
    ],
)
def test_page_links_show_the_ends_and_the_neighbourhood(page: int, total: int, links: list[int | None]) -> None:
    assert Pagination(page, total).links() == links


def test_pagination_counts_items_and_pages() -> None:
    assert (Pagination(1, 0).pages, Pagination(1, 20).pages, Pagination(1, 21).pages) == (1, 1, 2)
    second = Pagination(2, 25)
    assert (second.first_item, second.last_item) == (21, 25)
    assert (Pagination(1, 0).first_item, Pagination(1, 0).last_item) == (0, 0)
