"""Entry point of ``nazar-agent``: flags override ``NAZAR_AGENT_*`` settings."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sqlite3
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from nazar_agent import __version__
from nazar_agent.agent import Agent
from nazar_agent.collectors import SystemCollector
from nazar_agent.logs import configure_logging
from nazar_agent.settings import AgentSettings, parse_labels
from nazar_agent.wire import build_payload

logger = logging.getLogger("nazar_agent")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nazar-agent",
        description=(
            "Collect host metrics and ship them to the Nazar ingest API. Every flag "
            "overrides the matching NAZAR_AGENT_* environment variable. The API key "
            "is read only from NAZAR_AGENT_API_KEY (never from the command line)."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--url", help="ingest base URL (NAZAR_AGENT_URL)")
    parser.add_argument("--interval", type=float, help="seconds between collections")
    parser.add_argument("--hostname", help="host name reported in batches")
    parser.add_argument(
        "--label",
        action="append",
        metavar="KEY=VALUE",
        help="host label, repeatable; replaces NAZAR_AGENT_LABELS entirely",
    )
    parser.add_argument("--buffer-dir", type=Path, help="directory of the on-disk buffer")
    parser.add_argument("--buffer-max-bytes", type=int, help="bound of the on-disk buffer")
    parser.add_argument("--timeout", type=float, help="HTTP timeout, seconds")
    parser.add_argument("--max-batch-samples", type=int, help="split batches above this size")
    parser.add_argument(
        "--insecure",
        dest="verify_tls",
        action="store_const",
        const=False,
        help="do not verify the server's TLS certificate",
    )
    parser.add_argument("--ca-file", type=Path, help="PEM CA bundle to trust")
    parser.add_argument("--backoff-base", type=float, help="first retry delay ceiling, seconds")
    parser.add_argument("--backoff-cap", type=float, help="maximum retry delay ceiling, seconds")
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR")
    parser.add_argument(
        "--once",
        action="store_true",
        help="collect once, print the batch as JSON to stdout and exit (nothing is sent)",
    )
    parser.add_argument(
        "--once-window",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="with --once: seconds between the two readings rates are computed from "
        "(0 prints only gauges)",
    )
    return parser


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Settings fields given on the command line (unset flags are left to the env)."""
    fields = (
        "url", "interval", "hostname", "buffer_dir", "buffer_max_bytes", "timeout",
        "max_batch_samples", "verify_tls", "ca_file", "backoff_base", "backoff_cap",
        "log_level",
    )  # fmt: skip
    overrides = {name: getattr(args, name) for name in fields if getattr(args, name) is not None}
    if args.label is not None:
        overrides["labels"] = parse_labels(",".join(args.label))
    return overrides


def collect_once(settings: AgentSettings, window: float) -> dict[str, Any]:
    """One collection as the JSON payload that would be sent (rates need ``window`` > 0)."""
    collector = SystemCollector()
    samples = collector.collect()
    if window > 0:
        time.sleep(window)
        samples = collector.collect()
    valid = [sample for sample in samples if sample.is_valid()]
    return build_payload(settings.hostname, settings.labels, valid)


async def run_agent(settings: AgentSettings) -> None:
    agent = Agent(settings)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, agent.stop)
    try:
        await agent.run()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = AgentSettings(**overrides_from_args(args))
    except (ValidationError, ValueError) as exc:
        print(f"nazar-agent: invalid configuration:\n{exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    if args.once:
        payload = collect_once(settings, args.once_window)
        sys.stdout.buffer.write(orjson.dumps(payload, option=orjson.OPT_INDENT_2) + b"\n")
        sys.stdout.flush()
        return 0
    if settings.api_key is None:
        logger.warning("NAZAR_AGENT_API_KEY is not set; requests carry no Authorization header")
    try:
        asyncio.run(run_agent(settings))
    except (OSError, sqlite3.Error) as exc:  # e.g. buffer directory not writable
        logger.critical("agent failed", extra={"error": str(exc)})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
