"""Protobuf messages of other projects that no installed package provides.

Built from descriptors at import time (no generated code, no code generator):

* ``prometheus.WriteRequest`` of Prometheus remote write 1.0 (``prompb/remote.proto``
  and ``prompb/types.proto``), reduced to the fields Nazar reads. Native
  histograms (``TimeSeries.histograms``, field 4) are declared as opaque bytes,
  which is wire-compatible, so they can be counted without being decoded.
  Exemplars and metadata are left undeclared: the decoder skips unknown fields.
* ``google.rpc.Status`` (code and message only), the error body OTLP/HTTP
  asks for with protobuf requests.

Parsing uses the protobuf runtime (upb), which is fast and rejects truncated
or malformed input with ``google.protobuf.message.DecodeError``.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto


def _field(name: str, number: int, ftype: int, label: int = _F.LABEL_OPTIONAL,
           type_name: str = "") -> descriptor_pb2.FieldDescriptorProto:
    field = _F(name=name, number=number, type=ftype, label=label)
    if type_name:
        field.type_name = type_name
    return field


def _build() -> descriptor_pool.DescriptorPool:
    pool = descriptor_pool.DescriptorPool()
    prom = descriptor_pb2.FileDescriptorProto(
        name="nazar/prompb/remote.proto", package="prometheus", syntax="proto3"
    )
    prom.message_type.add(name="Label").field.extend([
        _field("name", 1, _F.TYPE_STRING),
        _field("value", 2, _F.TYPE_STRING),
    ])
    prom.message_type.add(name="Sample").field.extend([
        _field("value", 1, _F.TYPE_DOUBLE),
        _field("timestamp", 2, _F.TYPE_INT64),
    ])
    prom.message_type.add(name="TimeSeries").field.extend([
        _field("labels", 1, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, ".prometheus.Label"),
        _field("samples", 2, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, ".prometheus.Sample"),
        _field("histograms", 4, _F.TYPE_BYTES, _F.LABEL_REPEATED),
    ])
    prom.message_type.add(name="WriteRequest").field.extend([
        _field("timeseries", 1, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, ".prometheus.TimeSeries"),
    ])
    # The same wire format with each label left as its encoded bytes: decoding
    # keys series by those bytes and decodes a label set only once (Nazar-only
    # view; senders repeat the same series in every request).
    prom.message_type.add(name="TimeSeriesLabelBytes").field.extend([
        _field("labels", 1, _F.TYPE_BYTES, _F.LABEL_REPEATED),
        _field("samples", 2, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, ".prometheus.Sample"),
        _field("histograms", 4, _F.TYPE_BYTES, _F.LABEL_REPEATED),
    ])
    prom.message_type.add(name="WriteRequestLabelBytes").field.extend([
        _field("timeseries", 1, _F.TYPE_MESSAGE, _F.LABEL_REPEATED,
               ".prometheus.TimeSeriesLabelBytes"),
    ])
    pool.Add(prom)
    rpc = descriptor_pb2.FileDescriptorProto(
        name="nazar/google/rpc/status.proto", package="google.rpc", syntax="proto3"
    )
    rpc.message_type.add(name="Status").field.extend([
        _field("code", 1, _F.TYPE_INT32),
        _field("message", 2, _F.TYPE_STRING),
    ])
    pool.Add(rpc)
    return pool


_POOL = _build()

WriteRequest: Any = message_factory.GetMessageClass(
    _POOL.FindMessageTypeByName("prometheus.WriteRequest")
)
WriteRequestLabelBytes: Any = message_factory.GetMessageClass(
    _POOL.FindMessageTypeByName("prometheus.WriteRequestLabelBytes")
)
Label: Any = message_factory.GetMessageClass(_POOL.FindMessageTypeByName("prometheus.Label"))
Status: Any = message_factory.GetMessageClass(_POOL.FindMessageTypeByName("google.rpc.Status"))
