"""A viewer's language and time zone: chosen in the header or on `/preferences`, kept in
cookies, else taken from the browser (Accept-Language; the `tz` cookie set by `tz.js`).

`localize` runs before every dashboard handler (an async dependency, so what it sets in
the request's context reaches the handler, also when the handler runs in a thread).
No `from __future__ import annotations`: FastAPI resolves the handlers' annotations.
"""

from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from cloud.dashboard import i18n, zones

__all__ = ["PREFERENCE_MAX_AGE_S", "localize", "router"]

# A preference is worth keeping for a year; it holds nothing secret.
PREFERENCE_MAX_AGE_S = 365 * 24 * 3600
MAX_FORM_BYTES = 4096


async def localize(request: Request) -> None:
    """Install the request's language and the viewer's zone (see the module docstring)."""
    locale = i18n.pick_locale(
        request.cookies.get(i18n.LANGUAGE_COOKIE), request.headers.get("accept-language")
    )
    i18n.use_locale(locale)
    chosen = request.cookies.get(zones.ZONE_COOKIE)
    browser = request.cookies.get(zones.BROWSER_ZONE_COOKIE)
    zones.use_zone(zones.viewer_zone(chosen, browser))
    request.state.locale = locale
    # Where the viewer's zone came from; tz.js reloads a page drawn in the default once.
    request.state.zone_from = (
        "chosen" if zones.zone_named(chosen) else "browser" if zones.zone_named(browser)
        else "default"
    )


def _safe_next(target: str | None) -> str:
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def router(render: Callable[..., HTMLResponse], viewer_dep: Any) -> APIRouter:
    """`GET /preferences` (the form) and `POST /preferences` (store the choice)."""
    prefs = APIRouter(include_in_schema=False)
    ViewerDep = Annotated[Any, Depends(viewer_dep)]

    @prefs.get("/preferences", response_class=HTMLResponse)
    def preferences_page(request: Request, who: ViewerDep) -> HTMLResponse:
        chosen = request.cookies.get(zones.ZONE_COOKIE)
        return render(
            request,
            "preferences.html",
            who,
            chosen_zone=chosen if zones.zone_named(chosen) else "",
            browser_zone=request.cookies.get(zones.BROWSER_ZONE_COOKIE)
            if zones.zone_named(request.cookies.get(zones.BROWSER_ZONE_COOKIE))
            else None,
            chosen_lang=request.cookies.get(i18n.LANGUAGE_COOKIE)
            if request.cookies.get(i18n.LANGUAGE_COOKIE) in i18n.LOCALES
            else "",
            zone_names=zones.known_zones(),
        )

    @prefs.post("/preferences")
    async def save_preferences(request: Request) -> Response:
        body = (await request.body())[:MAX_FORM_BYTES]
        form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        response = RedirectResponse(_safe_next((form.get("next") or ["/"])[0]), status_code=303)

        def keep(name: str, value: str | None) -> None:
            if value:
                response.set_cookie(
                    name,
                    value,
                    max_age=PREFERENCE_MAX_AGE_S,
                    path="/",
                    httponly=True,
                    samesite="lax",
                    secure=request.url.scheme == "https",
                )
            else:  # back to the browser's own language or zone
                response.delete_cookie(name, path="/")

        if "lang" in form:
            lang = form["lang"][0]
            keep(i18n.LANGUAGE_COOKIE, lang if lang in i18n.LOCALES else None)
        if "zone" in form:
            zone = form["zone"][0]
            keep(zones.ZONE_COOKIE, zone if zones.zone_named(zone) else None)
        return response

    return prefs
