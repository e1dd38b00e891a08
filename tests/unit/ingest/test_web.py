"""How ingest serves the web app and the API documentation: the built app
with client-side routes, long-cached hashed assets (gzip when accepted), a
clear 503 page when nothing is built, and Swagger UI / ReDoc from bundled
files (no CDN)."""

from __future__ import annotations

import gzip
from pathlib import Path

import httpx
import pytest

from nazar_ingest.app import create_app
from nazar_ingest.settings import IngestSettings

INDEX = '<!doctype html><html><body><div id="root"></div><script src="/assets/app-1a2b.js">' \
        "</script></body></html>"


def client(folder: Path) -> httpx.AsyncClient:
    app = create_app(IngestSettings(dashboard_dir=str(folder)))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://nazar")


@pytest.fixture
def build(tmp_path: Path) -> Path:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text(INDEX)
    script = b"console.log('nazar');" * 50
    (tmp_path / "assets" / "app-1a2b.js").write_bytes(script)
    (tmp_path / "assets" / "app-1a2b.js.gz").write_bytes(gzip.compress(script))
    (tmp_path / "favicon.svg").write_text("<svg/>")
    return tmp_path


async def test_client_routes_get_the_app_and_api_paths_do_not(build: Path) -> None:
    async with client(build) as c:
        for path in ("/", "/hosts/web-1", "/alerts/7", "/rules/new", "/explore?metric=x"):
            r = await c.get(path)
            assert r.status_code == 200, path
            assert r.text == INDEX
            assert r.headers["cache-control"] == "no-cache"
            csp = r.headers["content-security-policy"]
            assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        for path in ("/api/v1/nothing", "/api/v2/nothing", "/healthzz", "/metricsx"):
            r = await c.get(path)
            assert r.status_code == 404, path
            assert r.headers["content-type"].startswith("application/problem+json")


async def test_hashed_assets_are_cached_for_a_year_and_sent_gzipped(build: Path) -> None:
    async with client(build) as c:
        r = await c.get("/assets/app-1a2b.js", headers={"Accept-Encoding": "gzip"})
        assert r.status_code == 200
        assert r.headers["content-encoding"] == "gzip"
        assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert r.headers["content-type"].startswith("text/javascript")
        assert r.content == (build / "assets" / "app-1a2b.js").read_bytes()  # decoded
        r = await c.get("/assets/app-1a2b.js", headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in r.headers
        assert r.content == (build / "assets" / "app-1a2b.js").read_bytes()
        assert (await c.get("/assets/gone-0000.js")).status_code == 404
        r = await c.get("/favicon.svg")
        assert r.status_code == 200 and r.headers["cache-control"] == "public, max-age=300"


async def test_paths_outside_the_build_are_never_served(build: Path, tmp_path: Path) -> None:
    secret = build.parent / "secret.txt"
    secret.write_text("do not serve")
    async with client(build) as c:
        for path in ("/../secret.txt", "/%2e%2e/secret.txt", "/assets/..%2f..%2fsecret.txt"):
            r = await c.get(path)
            assert b"do not serve" not in r.content, path


async def test_a_missing_build_answers_503_saying_how_to_build(tmp_path: Path) -> None:
    async with client(tmp_path / "nothing") as c:
        r = await c.get("/hosts/web-1")
        assert r.status_code == 503
        assert "scripts/ensure-dashboard.sh" in r.text
        assert r.headers["content-type"].startswith("text/html")
        assert (await c.get("/api/v1/nothing")).status_code == 404


async def test_api_documentation_loads_only_bundled_assets(build: Path) -> None:
    async with client(build) as c:
        for page, assets in (("/docs", ("swagger-ui-bundle.js", "swagger-ui.css")),
                             ("/redoc", ("redoc.standalone.js",))):
            r = await c.get(page)
            assert r.status_code == 200
            assert "cdn" not in r.text.lower() and "fonts.googleapis" not in r.text
            for asset in assets:
                assert f"/docs-assets/{asset}" in r.text
                served = await c.get(f"/docs-assets/{asset}")
                assert served.status_code == 200 and len(served.content) > 100_000
