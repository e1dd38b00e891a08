"""The web app and the API documentation pages.

- ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) load their scripts and
  styles from the copies bundled in the ``fastapi-offline`` package, served
  under ``/docs-assets/``: they work without Internet access.
- The dashboard is a single-page app built by Vite into a folder
  (``NAZAR_DASHBOARD_DIR``, by default ``dashboard/dist``). Its hashed files
  under ``assets/`` are cached for a year; ``index.html`` is revalidated on
  each load and answers every other path that is not the API's, so client
  routes (``/hosts/web-1``, ``/alerts/7``) survive a reload. A precompressed
  ``.gz`` sibling is sent to clients that accept gzip. When the folder holds
  no build, those paths answer ``503`` with a page saying how to build it.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from nazar_common.errors import NotFoundError

DOCS_ASSETS = Path(fastapi_offline.__file__).resolve().parent / "static"
DOCS_PREFIX = "/docs-assets"

#: Paths that belong to the API or the service, never to the web app.
RESERVED = ("api/", "v1/", "write", "ping", "healthz", "readyz", "metrics", "openapi.json",
            "docs", "redoc")

#: The app loads everything from its own origin; nothing inline.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
IMMUTABLE = "public, max-age=31536000, immutable"

NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Nazar: dashboard not built</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto;
padding: 0 1rem; line-height: 1.5">
<h1>The dashboard has not been built</h1>
<p>This server found no built web app in <code>{folder}</code>.</p>
<p>Build it from the source checkout with <code>scripts/ensure-dashboard.sh</code>
(<code>make up</code> does it), or point <code>NAZAR_DASHBOARD_DIR</code> at a folder
holding a build (<code>index.html</code> and <code>assets/</code>).</p>
<p>The API works meanwhile: see <a href="/docs">/docs</a>.</p>
</body></html>
"""


def _file(folder: Path, relative: str) -> Path | None:
    """``folder/relative`` when it is a file inside ``folder``."""
    if not relative or "\x00" in relative:
        return None
    root = folder.resolve()
    candidate = (root / relative).resolve()
    if candidate.is_relative_to(root) and candidate.is_file():
        return candidate
    return None


def _send(request: Request, path: Path, headers: dict[str, str]) -> Response:
    """``path``, or its ``.gz`` sibling for a client that accepts gzip."""
    accepts = request.headers.get("accept-encoding", "")
    gz = path.with_name(path.name + ".gz")
    if "gzip" in accepts and gz.is_file():
        return FileResponse(
            gz,
            media_type=_media_type(path),
            headers={**headers, "Content-Encoding": "gzip", "Vary": "Accept-Encoding"},
        )
    return FileResponse(path, media_type=_media_type(path), headers=headers)


def _media_type(path: Path) -> str | None:
    return {
        ".js": "text/javascript; charset=utf-8",
        ".css": "text/css; charset=utf-8",
        ".svg": "image/svg+xml",
        ".json": "application/json",
        ".html": "text/html; charset=utf-8",
    }.get(path.suffix)


def install(app: FastAPI, dashboard: Path) -> None:
    """Add the documentation pages and, last, the web app's catch-all route."""
    app.mount(DOCS_PREFIX, StaticFiles(directory=DOCS_ASSETS), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{DOCS_PREFIX}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_PREFIX}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_PREFIX}/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{DOCS_PREFIX}/redoc.standalone.js",
            redoc_favicon_url=f"{DOCS_PREFIX}/favicon.png",
            with_google_fonts=False,
        )

    @app.get("/{path:path}", include_in_schema=False)
    async def web_app(path: str, request: Request) -> Response:
        if path.startswith(RESERVED):
            raise NotFoundError(f"no such endpoint: /{path}")
        index = dashboard / "index.html"
        if not index.is_file():
            return HTMLResponse(
                NOT_BUILT.format(folder=dashboard), status_code=503,
                headers={"Cache-Control": "no-store", "Retry-After": "60"},
            )
        found = _file(dashboard, path)
        if found is not None and found.name != "index.html":
            cache = IMMUTABLE if path.startswith("assets/") else "public, max-age=300"
            return _send(request, found, {"Cache-Control": cache})
        if path.startswith("assets/"):
            raise NotFoundError(f"no such file: /{path}")
        return _send(
            request,
            index,
            {"Cache-Control": "no-cache", "Content-Security-Policy": CSP,
             "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"},
        )
