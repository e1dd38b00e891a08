"""``nazar-ingest``: run the API server."""

from __future__ import annotations

import uvicorn

from nazar_ingest.settings import IngestSettings


def main() -> None:
    settings = IngestSettings()
    uvicorn.run(
        "nazar_ingest.app:create_app",
        factory=True,
        host=settings.listen_host,
        port=settings.listen_port,
        workers=settings.workers,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        timeout_graceful_shutdown=20,
    )


if __name__ == "__main__":
    main()
