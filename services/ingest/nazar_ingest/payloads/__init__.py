"""Decoders of third-party ingestion protocols.

One module per protocol (``remote_write``, ``otlp``, ``influx``); each turns a
request body into :class:`~nazar_ingest.samples.BatchBuilder` calls through
:class:`~nazar_ingest.payloads.sink.SampleSink`, so every protocol obeys the
same validation rules as the native JSON endpoint.
"""
