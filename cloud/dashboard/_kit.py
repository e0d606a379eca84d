"""What every page module needs from the dashboard router: templates, who is looking, a
read-only session, and the page and error renderers. `routes.build_router` makes one and
hands it to the page modules (`_pages_*.py`), each of which returns its own `APIRouter`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from cloud.dashboard.auth import Viewer

__all__ = ["PageKit", "form_of", "multi_params"]


@dataclass(frozen=True)
class PageKit:
    """The shared pieces of the dashboard's pages.

    `viewer` and `read_session` are FastAPI dependencies; `render(request, template, who,
    **context)` and `error_page(request, who, status, title, message)` return pages."""

    templates: Jinja2Templates
    viewer: Callable[..., Viewer]
    read_session: Callable[..., Iterator[Session]]
    render: Callable[..., HTMLResponse]
    error_page: Callable[..., HTMLResponse]


async def form_of(request: Request) -> dict[str, str]:
    """A small url-encoded form as field → last value (the CSRF middleware bounded its size)."""
    fields = parse_qs((await request.body()).decode("utf-8", "replace"), max_num_fields=50)
    return {name: values[-1] for name, values in fields.items()}


def multi_params(request: Request) -> dict[str, list[str]]:
    """The query string with every value of a repeated parameter (`?state=a&state=b`)."""
    out: dict[str, list[str]] = {}
    for name, value in request.query_params.multi_items():
        out.setdefault(name, []).append(value)
    return out
