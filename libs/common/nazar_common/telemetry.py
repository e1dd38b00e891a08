"""Structured logs and OpenTelemetry tracing, shared by every deployable."""

from __future__ import annotations

import logging
import socket
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from pythonjsonlogger.json import JsonEncoder, JsonFormatter

from nazar_common.redaction import redact as redact  # re-exported
from nazar_common.settings import CommonSettings

#: Attributes every LogRecord has; the others came as ``extra``.
_RECORD_ATTRIBUTES = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__
) | {"message", "asctime", "trace_id", "span_id"}


class RedactingFilter(logging.Filter):
    """Scrub secrets from every record before it is formatted: its message,
    arguments, ``extra`` fields and exception text."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if record.args:
            if isinstance(record.args, Mapping):
                record.args = {
                    k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()
                }
            else:
                record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        for name, value in record.__dict__.items():
            if name not in _RECORD_ATTRIBUTES and isinstance(value, str):
                record.__dict__[name] = redact(value)
        if record.exc_info and record.exc_info[1] is not None:
            # Formatted here, redacted, and kept as text: an exception's
            # message may quote a URL with its credentials.
            record.exc_text = redact(_FORMATTER.formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


_FORMATTER = logging.Formatter()


def _make_record(
    self: logging.Logger,
    name: str,
    level: int,
    fn: str,
    lno: int,
    msg: object,
    args: Any,
    exc_info: Any,
    func: str | None = None,
    extra: Mapping[str, object] | None = None,
    sinfo: str | None = None,
) -> logging.LogRecord:
    """``Logger.makeRecord`` that namespaces an ``extra`` key naming a record
    attribute (``created``, ``name``, ``message`` …) as ``extra.<key>``.

    The standard one raises ``KeyError`` for those — and only when the level
    is enabled, so a call that passes at WARNING crashes its caller at INFO.
    """
    record = logging.getLogRecordFactory()(name, level, fn, lno, msg, args, exc_info, func, sinfo)
    for key, value in (extra or {}).items():
        if key in ("message", "asctime") or key in record.__dict__:
            key = f"extra.{key}"
        record.__dict__[key] = value
    return record


def install_safe_extras() -> None:
    """Make every logger (existing and future, the libraries' too) use
    :func:`_make_record`. Idempotent; :func:`setup_logging` calls it."""
    logging.Logger.makeRecord = _make_record  # type: ignore[method-assign]


class _TraceContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            record.trace_id = format(ctx.trace_id, "032x")
            record.span_id = format(ctx.span_id, "016x")
        return True


class _Encoder(JsonEncoder):
    """Values the JSON encoder cannot take become ``<TypeName>``: a record
    must never be lost to one of its ``extra`` values (kopf passes its
    settings, a dataclass holding a queue, with every object's line)."""

    def default(self, o: Any) -> Any:
        try:
            return super().default(o)
        except Exception:
            return f"<{type(o).__name__}>"


class _Formatter(JsonFormatter):
    """kopf attaches its whole ``settings`` object to each of its records (its
    own event poster reads it): not log data, left out of the line."""

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_data, record, message_dict)
        if record.name.startswith("kopf"):
            log_data.pop("settings", None)


def setup_logging(settings: CommonSettings, service: str) -> None:
    """Configure the root logger: JSON lines on stderr, secrets redacted,
    ``extra`` keys that would collide with record attributes namespaced."""
    install_safe_extras()
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(
            _Formatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                static_fields={"service": service},
                json_encoder=_Encoder,
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.addFilter(RedactingFilter())
    handler.addFilter(_TraceContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    logging.getLogger("asyncio").setLevel(max(logging.WARNING, root.level))
    # httpx logs every request's full URL at INFO, as a URL object the
    # redaction cannot see into: a Slack webhook URL is itself the secret.
    for client in ("httpx", "httpcore"):
        logging.getLogger(client).setLevel(max(logging.WARNING, root.level))
    # The runtime reports broker and database incidents itself, once each
    # (nazar_common.runtime); the clients would log every failed reconnection
    # attempt (asyncpg's pool: every attempt to restore its minimum size).
    # Their lines are kept for debugging.
    for client in ("aiormq", "aio_pika", "asyncpg.pool"):
        logging.getLogger(client).setLevel(
            logging.DEBUG if root.level <= logging.DEBUG else logging.CRITICAL
        )


def setup_tracing(settings: CommonSettings, service: str) -> None:
    """Install a tracer provider when an exporter is configured.

    With ``none`` no SDK provider is installed: spans are then non-recording
    and cost next to nothing, while incoming trace context (HTTP
    ``traceparent``, AMQP headers) is still passed on."""
    if settings.otel_exporter == "none":
        return
    resource = Resource.create(
        {
            "service.name": service,
            "service.instance.id": settings.service_instance or socket.gethostname(),
        }
    )
    provider = TracerProvider(resource=resource)
    if settings.otel_exporter == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter(out=sys.stderr)))
    elif settings.otel_exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)


def inject_headers(headers: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Write the current trace context into AMQP message headers."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    headers.update(carrier)
    return headers


def extract_context(headers: Mapping[str, Any] | None) -> Any:
    """Read a trace context from AMQP message headers (for ``start_as_current_span``)."""
    carrier = {
        k: v.decode() if isinstance(v, bytes) else str(v) for k, v in (headers or {}).items()
    }
    return propagate.extract(carrier)
