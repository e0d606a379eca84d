"""The REST API's documentation pages, served from this service alone: Swagger UI at
`/docs`, ReDoc at `/redoc`, both reading `/_dashboard/openapi.json`.

The scripts and stylesheet of Swagger UI and ReDoc are the copies the pinned
`fastapi-offline` package ships (MIT; Swagger UI is Apache-2.0, ReDoc MIT): nothing is
loaded from a CDN, so the pages work offline. The pages are dashboard pages: whoever may
read the dashboard (signed in, or read-only from this computer) may read the API's
description; calling the API from Swagger UI ("Try it out") needs a token pasted into its
"Authorize" dialog, as any API client does.

Each page starts its viewer from a script file of ours (no inline script). Swagger UI
fetches the document (`connect-src 'self'`); ReDoc writes its styles into `<style>`
elements at run time and searches in a blob worker, so `/redoc` alone also allows inline
styles and blob workers. No `from __future__ import annotations`: FastAPI reads the
handlers' annotations.
"""

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

__all__ = ["REDOC_CSP", "SWAGGER_CSP", "VENDOR_FILES", "router"]

_BASE_CSP = (
    "default-src 'none'",
    "script-src 'self'",
    "img-src 'self' data:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
)
SWAGGER_CSP = "; ".join((*_BASE_CSP, "style-src 'self'"))
REDOC_CSP = "; ".join((*_BASE_CSP, "style-src 'self' 'unsafe-inline'", "worker-src 'self' blob:"))

_STATIC = Path(__file__).parent / "static"


def _vendor_dir() -> Path:
    import fastapi_offline

    return Path(fastapi_offline.__file__).parent / "static"


# name served under /_dashboard/docs/ -> (folder, media type)
VENDOR_FILES: dict[str, tuple[Callable[[], Path], str]] = {
    "swagger-ui-bundle.js": (_vendor_dir, "text/javascript"),
    "swagger-ui.css": (_vendor_dir, "text/css"),
    "redoc.standalone.js": (_vendor_dir, "text/javascript"),
    "swagger-init.js": (lambda: _STATIC, "text/javascript"),
    "redoc-init.js": (lambda: _STATIC, "text/javascript"),
    "apidocs.css": (lambda: _STATIC, "text/css"),
}


def router(render: Callable[..., HTMLResponse], viewer_dep: Any, prefix: str) -> APIRouter:
    """`/docs`, `/redoc`, the document and the viewers' files under `prefix`/docs/."""
    docs = APIRouter(include_in_schema=False)
    ViewerDep = Annotated[Any, Depends(viewer_dep)]
    spec_url = f"{prefix}/openapi.json"

    @docs.get("/docs", response_class=HTMLResponse)
    def swagger_page(request: Request, who: ViewerDep) -> HTMLResponse:
        response = render(request, "apidocs.html", who, viewer_kind="swagger", spec_url=spec_url)
        response.headers["Content-Security-Policy"] = SWAGGER_CSP
        return response

    @docs.get("/redoc", response_class=HTMLResponse)
    def redoc_page(request: Request, who: ViewerDep) -> HTMLResponse:
        response = render(request, "apidocs.html", who, viewer_kind="redoc", spec_url=spec_url)
        response.headers["Content-Security-Policy"] = REDOC_CSP
        return response

    @docs.get(spec_url)
    def openapi_document(request: Request, who: ViewerDep) -> JSONResponse:
        return JSONResponse(request.app.openapi())

    @docs.get(prefix + "/docs/{name}")
    def vendor_file(name: str) -> FileResponse:
        entry = VENDOR_FILES.get(name)
        if entry is None:
            raise HTTPException(404, "no such file")
        folder, media_type = entry
        return FileResponse(
            folder() / name, media_type=media_type, headers={"Cache-Control": "max-age=3600"}
        )

    return docs
