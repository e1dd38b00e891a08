"""Parsing JSON request bodies with a nesting limit (pure logic).

A document nested a thousand levels deep is valid JSON, but code that walks
it recursively (protobuf's JSON parser, the standard library's encoder)
fails with ``RecursionError``. Bodies are therefore refused with ``400``
beyond :data:`MAX_JSON_DEPTH` levels, more than any payload of this API
needs (an OTLP request is about 15 levels deep).
"""

from __future__ import annotations

from typing import Any

import orjson

from nazar_common.errors import InvalidInputError

#: Deepest nesting of objects and arrays accepted in a JSON body.
MAX_JSON_DEPTH = 64


def check_json_depth(doc: Any, max_depth: int = MAX_JSON_DEPTH) -> None:
    """400 if ``doc`` nests objects and arrays more than ``max_depth`` levels
    deep (a top-level object is level 1). Walks level by level, no recursion."""
    level: list[Any] = [doc] if isinstance(doc, dict | list) else []
    depth = 0
    while level:
        depth += 1
        if depth > max_depth:
            raise InvalidInputError(f"JSON nested deeper than {max_depth} levels")
        level = [v for node in level for v in _children(node) if isinstance(v, dict | list)]


def _children(node: Any) -> Any:
    return node.values() if isinstance(node, dict) else node


def load_json(body: bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """A JSON document, 400 if it is not valid JSON or nests too deep."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError(f"body is not valid JSON: {exc}") from None
    check_json_depth(doc, max_depth)
    return doc
