"""Every page form fuzzed: nothing a browser or a hand-made POST can send may cause a 5xx.

schemathesis fuzzes the JSON API from its OpenAPI (test_schemathesis.py); the pages' routes are not
in that schema, so their forms are read from the routes themselves (the fields of each declared
``Form`` model, ``UploadFile`` included) and filled by Hypothesis with the text people and scanners
really produce and the text parsers trip on: empty, spaces, day-first and impossible dates, numbers
out of every range, NUL bytes, right-to-left and combining characters, very long values, repeated
fields. Signed in as an administrator (every page's role check passes) with a valid CSRF token, so
each request reaches the page's own parsing and its service. A refusal is fine (4xx, or the page
again with the reason); a 500 is a failure. Path parameters (a consignment reference, a batch id)
are fuzzed too.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi import UploadFile
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from harness.fuzzing import fuzz_settings
from harness.web import cheap_password_hashing, login, make_users  # noqa: F401 (autouse fixture)
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from api.app import create_app
from factory.kernel.config import Settings
from factory.kernel.context import AppContext

# Sign-in has its own throttle (its tests cover it); logging out ends the session the test uses.
SKIPPED = {"/login", "/logout"}
CI_EXAMPLES = 8  # per form and database; FACTORY_FUZZ_EXAMPLES=N for a longer campaign (harness.fuzzing)
_PATH_PARAM = re.compile(r"{([^}]+)}")

# What lands in form fields at a bench: scanner output, typed dates and times, and what breaks parsers.
TRICKY = st.sampled_from(
    [
        "",
        " ",
        "0",
        "-1",
        "1e400",
        "9" * 40,
        "31/02/2026",
        "29/02/2025",
        "2026-13-45",
        "24:61",
        "00:00",
        "yes",
        "on",
        "\x00",
        "a\x00b",
        "\u202eRTL",
        "e\u0301",
        "\ud7ff",
        "LT-0001",
        "<script>alert(1)</script>",
        "' OR 1=1 --",
        "x" * 5000,
    ]
)
VALUE = st.one_of(TRICKY, st.text(max_size=40), st.integers(-(2**70), 2**70).map(str))
PATH_VALUE = st.one_of(
    st.sampled_from(["1", "0", "-1", "9" * 30, "CN-1", "%00", "..", "x" * 300]), st.text(min_size=1, max_size=20)
)


@dataclass(frozen=True)
class PageForm:
    path: str
    fields: tuple[tuple[str, str], ...]  # (form name, "text" | "list" | "bool" | "file")

    @property
    def path_params(self) -> list[str]:
        return _PATH_PARAM.findall(self.path)


def _kind(annotation: object) -> str:
    if typing.get_origin(annotation) is list:
        return "list"
    if annotation is bool:
        return "bool"
    if UploadFile in typing.get_args(annotation) or annotation is UploadFile:
        return "file"
    return "text"


def _form_fields(route: APIRoute) -> Iterator[tuple[str, str]]:
    for param in route.dependant.body_params:
        model = param.field_info.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):
            for name, field in model.model_fields.items():
                yield field.alias or name, _kind(field.annotation)
        else:
            yield param.alias, _kind(model)


def page_forms() -> list[PageForm]:
    # Routes only: the context is never opened (as test_schemathesis.py loads its schema).
    app = create_app(AppContext(Settings(home=Path("/nonexistent"), database_url="sqlite:///:memory:", site_name="f")))
    forms = []
    for rc in iter_route_contexts(app.routes):
        route = rc.original_route
        if isinstance(route, APIRoute) and "POST" in route.methods and not rc.path.startswith("/api"):
            if rc.path not in SKIPPED:
                forms.append(PageForm(rc.path, tuple(_form_fields(route))))
    return sorted(forms, key=lambda f: f.path)


FORMS = page_forms()


def test_the_page_forms_are_found() -> None:
    paths = {f.path for f in FORMS}
    assert len(FORMS) >= 35, paths
    assert {"/tech/receive", "/tech/disposal/{batch_id}/collect", "/courier/consignments/new"} <= paths
    receive = next(f for f in FORMS if f.path == "/tech/receive")
    assert receive.fields, "the receive page's form model was not read"


Request = tuple[str, dict[str, list[str]], dict[str, tuple]]


def _request_parts(draw: st.DrawFn, form: PageForm) -> Request:
    path = form.path
    for name in form.path_params:
        path = path.replace("{" + name + "}", quote(draw(PATH_VALUE), safe=""))  # as a browser sends it
    data: dict[str, list[str]] = {}
    files: dict[str, tuple] = {}
    for name, kind in form.fields:
        if not draw(st.booleans()) and draw(st.booleans()):
            continue  # a field left out altogether, as a hand-made POST may
        if kind == "file":
            files[name] = (
                "upload.bin",
                draw(st.binary(max_size=300)),
                draw(st.sampled_from(["text/csv", "image/png", ""])),
            )
        elif kind == "list":
            data[name] = draw(st.lists(VALUE, max_size=4))
        elif kind == "bool":
            data[name] = [draw(st.sampled_from(["on", "true", "false", "", "2"]))]
        else:
            data[name] = draw(st.lists(VALUE, min_size=1, max_size=2))  # sometimes sent twice
    return path, data, files


@pytest.mark.slow  # generated posts to every page form, on both databases
@pytest.mark.parametrize("form", FORMS, ids=lambda f: f.path)
def test_no_page_form_input_causes_a_server_error(ctx: AppContext, form: PageForm) -> None:
    make_users(ctx)
    client = TestClient(create_app(ctx), raise_server_exceptions=False)
    csrf = login(client, "admin1")

    @given(parts=st.composite(lambda draw: _request_parts(draw, form))())
    @fuzz_settings(CI_EXAMPLES)
    def fuzz(parts: Request) -> None:
        path, data, files = parts
        response = client.post(path, data={**data, "csrf_token": csrf}, files=files or None, follow_redirects=False)
        assert response.status_code < 500, f"POST {path} {data!r}: {response.status_code} {response.text[:300]}"

    fuzz()
