"""The charts page: processed and failed per minute (last hour) and per day (last week), per job name and in total,
with queue latency — drawn on the server as inline SVG, so the page needs no script or style from outside the
package and the Content-Security-Policy stays strict. `/api/charts` serves the same series as JSON."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from flask import Blueprint, jsonify, render_template, url_for
from flask.typing import ResponseReturnValue

from workq.connection import reply_text, translated_faults
from workq.throughput import TOTAL, Charts, Series, read_charts
from workq.web import records
from workq.web.state import dashboard

blueprint = Blueprint("charts", __name__)

HOUR_WIDTH, DAYS_WIDTH, HEIGHT = 720, 360, 140
"""The SVGs' user units, in the ratio of the page's two columns (2fr 1fr): the CSS scales each to its column's
width, so text inside keeps its shape."""
AXIS_LABELS = 5
"""Labels under a chart of more bars than this: evenly spaced, the first and the last included."""


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    processed_y: float
    processed_height: float
    failed_y: float
    failed_height: float
    title: str


@dataclass(frozen=True)
class Drawing:
    """One series as SVG geometry: stacked bars (processed under failed) and an optional latency line."""

    bars: list[Bar]
    peak: int
    latency_points: str
    latency_peak: int
    axis: list[tuple[float, str, str]]
    """(x, text, SVG text-anchor) of each label under the bars; the end ones are anchored inside the chart."""
    width: int


def draw(series: Series, width: int) -> Drawing:
    count = len(series.labels)
    slot = width / max(1, count)
    peak = max([p + f for p, f in zip(series.processed, series.failed, strict=True)] or [0])
    scale = HEIGHT / max(1, peak)
    bars = []
    for index, (label, processed, failed) in enumerate(
        zip(series.labels, series.processed, series.failed, strict=True)
    ):
        processed_height, failed_height = processed * scale, failed * scale
        bars.append(
            Bar(
                x=round(index * slot + slot * 0.1, 2),
                width=round(slot * 0.8, 2),
                processed_y=round(HEIGHT - processed_height, 2),
                processed_height=round(processed_height, 2),
                failed_y=round(HEIGHT - processed_height - failed_height, 2),
                failed_height=round(failed_height, 2),
                title=f"{label}: {processed} processed, {failed} failed",
            )
        )
    latency_peak = max(series.latency or [0])
    latency_scale = HEIGHT / max(1, latency_peak)
    points = " ".join(
        f"{round(index * slot + slot / 2, 2)},{round(HEIGHT - value * latency_scale, 2)}"
        for index, value in enumerate(series.latency)
    )
    return Drawing(bars, peak, points if latency_peak else "", latency_peak, _axis(series.labels, slot), width)


def _axis(labels: list[str], slot: float) -> list[tuple[float, str, str]]:
    count = len(labels)
    if count <= AXIS_LABELS + 3:
        shown = list(range(count))
    else:
        shown = sorted({round(step * (count - 1) / (AXIS_LABELS - 1)) for step in range(AXIS_LABELS)})
    axis = []
    for index in shown:
        text = labels[index][5:] if len(labels[index]) == 10 else labels[index]  # a day as MM-DD
        if index == 0 and count > 1:
            axis.append((0.0, text, "start"))
        elif index == count - 1 and count > 1:
            axis.append((round(count * slot, 2), text, "end"))
        else:
            axis.append((round(index * slot + slot / 2, 2), text, "middle"))
    return axis


@blueprint.get("/charts")
def charts_page() -> str:
    state = dashboard()
    charts = _charts()
    return render_template(
        "charts.html",
        page_id="charts",
        title="Charts",
        counts=records.counts(state.client),
        back=url_for("charts.charts_page"),
        now=state.now(),
        total=TOTAL,
        minutes={name: draw(series, HOUR_WIDTH) for name, series in charts.minutes.items()},
        days={name: draw(series, DAYS_WIDTH) for name, series in charts.days.items()},
        height=HEIGHT,
    )


@blueprint.get("/api/charts")
def charts_data() -> ResponseReturnValue:
    """`{"minutes": {name: series}, "days": {name: series}}`; the all-names series is under the name ""."""
    charts = _charts()
    return jsonify(
        {
            "minutes": {name: dataclasses.asdict(series) for name, series in charts.minutes.items()},
            "days": {name: dataclasses.asdict(series) for name, series in charts.days.items()},
        }
    )


def _charts() -> Charts:
    state = dashboard()
    client = state.client
    with translated_faults(client.redis):
        names = sorted(
            name
            for raw in client.redis.smembers(client.keys.known_jobs)
            if (name := reply_text(raw)) and name.isprintable()
        )
        return read_charts(client.redis, client.keys, names, state.clock())
