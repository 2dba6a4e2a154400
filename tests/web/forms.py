"""The forms a dashboard page renders, read as a browser reads them (action, hidden fields, button), so a test can
press a button exactly as the page offers it."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

from flask.testing import FlaskClient
from werkzeug.test import TestResponse


@dataclass
class Form:
    """One POST form: where it posts, its fields (decoded, as the browser sends them) and its button's label."""

    action: str
    fields: dict[str, str] = field(default_factory=dict)
    button: str = ""
    row: str = ""
    """The `data-job-id` or `data-queue` of the table row holding the form, if any."""

    def submit(self, web: FlaskClient) -> TestResponse:
        return web.post(self.action, data=self.fields)


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._row = ""
        self._form: Form | None = None
        self._in_button = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "tr":
            self._row = values.get("data-job-id") or values.get("data-queue") or ""
        elif tag == "form" and values.get("method") == "post":
            self._form = Form(values.get("action", ""), row=self._row)
            self.forms.append(self._form)
        elif tag == "input" and self._form is not None and "name" in values:
            self._form.fields[values["name"]] = values.get("value", "")
        elif tag == "button" and self._form is not None:
            self._in_button = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "button":
            self._in_button = False

    def handle_data(self, data: str) -> None:
        if self._in_button and self._form is not None:
            self._form.button += data.strip()


def page_forms(html: str) -> list[Form]:
    parser = _FormParser()
    parser.feed(html)
    return parser.forms


def row_form(html: str, row: str, button: str) -> Form:
    """The form behind `button` in the table row whose `data-job-id` / `data-queue` is `row`; exactly one."""
    [found] = [form for form in page_forms(html) if form.row == row and form.button == button]
    return found
