"""The parts of the OpenAPI document FastAPI does not generate here.

Some endpoints read their JSON body themselves (to report every invalid
field at once, or on a plain ASGI route for speed), so FastAPI cannot derive
their request schemas. They are declared with :func:`json_body`, which
refers to the model under ``#/components/schemas`` and records the model's
schemas (nested models included) for :func:`install` to add to the
document, so that every ``$ref`` in it resolves.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

REF_TEMPLATE = "#/components/schemas/{model}"

#: Component schemas of the models declared with :func:`schema_ref`.
_COMPONENTS: dict[str, Any] = {}


def schema_ref(model: type[BaseModel]) -> dict[str, str]:
    """A reference to ``model``'s schema, recorded for the document."""
    schema = model.model_json_schema(ref_template=REF_TEMPLATE)
    _COMPONENTS.update(schema.pop("$defs", {}))
    _COMPONENTS[model.__name__] = schema
    return {"$ref": REF_TEMPLATE.format(model=model.__name__)}


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """An operation's ``requestBody``: required JSON described by ``model``."""
    return {"required": True, "content": {"application/json": {"schema": schema_ref(model)}}}


def install(app: FastAPI, paths: dict[str, Any]) -> None:
    """Generate ``app``'s document with ``paths`` (served by plain routes)
    and the recorded component schemas added."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            document["paths"] = {**paths, **document["paths"]}
            components = document.setdefault("components", {}).setdefault("schemas", {})
            for name, schema in _COMPONENTS.items():
                components.setdefault(name, schema)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
