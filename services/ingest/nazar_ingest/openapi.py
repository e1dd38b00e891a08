"""The parts of the OpenAPI document FastAPI does not generate here.

Some endpoints read their JSON body themselves (to report every invalid
field at once, or on a plain ASGI route for speed), so FastAPI cannot derive
their request schemas. They are declared with :func:`json_body`, which
refers to the model under ``#/components/schemas`` and records the model's
schemas (nested models included) for :func:`install` to add to the
document, so that every ``$ref`` in it resolves.

:func:`install` also documents every operation's error responses, all
problem+json (:class:`Problem`), from what the operation takes: every
authenticated one can answer 401, 403 and 503 (the key cannot be verified
while the database is down), one with parameters or a body 400, one with
path parameters 404, one with a body 408, 413 and 415. Others (409, 422)
are declared on their routes. FastAPI's default 422 is dropped: this API
answers invalid parameters with 400.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

REF_TEMPLATE = "#/components/schemas/{model}"

PROBLEM_MEDIA_TYPE = "application/problem+json"

#: Component schemas of the models declared with :func:`schema_ref`.
_COMPONENTS: dict[str, Any] = {}


def schema_ref(model: type[BaseModel]) -> dict[str, str]:
    """A reference to ``model``'s schema, recorded for the document."""
    schema = model.model_json_schema(ref_template=REF_TEMPLATE)
    _COMPONENTS.update(schema.pop("$defs", {}))
    _COMPONENTS[model.__name__] = schema
    return {"$ref": REF_TEMPLATE.format(model=model.__name__)}


def json_body(model: type[BaseModel], *, required: bool = True) -> dict[str, Any]:
    """An operation's ``requestBody``: JSON described by ``model``."""
    return {"required": required, "content": {"application/json": {"schema": schema_ref(model)}}}


class ProblemField(BaseModel):
    loc: str = Field(description="Where: a field path, a line, a parameter.")
    msg: str = Field(description="What is wrong there.")


class Problem(BaseModel):
    """An RFC 9457 problem document; some problems carry more members."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=["https://nazar.dev/problems/invalid-input"])
    title: str
    status: int
    detail: str
    errors: list[ProblemField] | None = Field(
        default=None, description="The invalid fields, for invalid payloads and parameters."
    )


#: Descriptions of the error statuses documented on every operation they apply to.
ERRORS: dict[str, str] = {
    "400": "Invalid parameters or body (problem+json; `errors` lists the fields)",
    "401": "Missing or invalid API key",
    "403": "The API key lacks the scope",
    "404": "Not found",
    "408": "The request body did not arrive within the body timeout (the connection is closed)",
    "409": "Conflict",
    "413": "The body is larger than the limit",
    "415": "Unsupported Content-Type",
    "422": "Unprocessable request",
    "503": "A dependency is unavailable; retry after Retry-After",
}

#: Paths answered without an API key.
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/ping"})


def _statuses(path: str, operation: dict[str, Any]) -> list[str]:
    params = operation.get("parameters", [])
    body = "requestBody" in operation
    statuses = []
    if params or body:
        statuses.append("400")
    if path not in PUBLIC_PATHS:
        statuses += ["401", "403", "503"]
    if any(p.get("in") == "path" for p in params):
        statuses.append("404")
    if body:
        statuses += ["408", "413", "415"]
    return statuses


def _is_fastapi_422(response: dict[str, Any]) -> bool:
    content = response.get("content", {}).get("application/json", {})
    return str(content.get("schema", {}).get("$ref", "")).endswith("/HTTPValidationError")


def document_errors(document: dict[str, Any]) -> None:
    """Add the error responses of every operation of ``document`` (see module doc)."""
    problem = {PROBLEM_MEDIA_TYPE: {"schema": schema_ref(Problem)}}
    for path, item in document.get("paths", {}).items():
        for operation in item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses: dict[str, Any] = operation["responses"]
            if _is_fastapi_422(responses.get("422", {})):
                del responses["422"]
            for status in _statuses(path, operation):
                responses.setdefault(status, {})
            for status, response in responses.items():
                if status[0] not in "45":
                    continue
                response.setdefault("description", ERRORS.get(status, "Error"))
                if not response.get("content"):  # a route may document another body
                    response["content"] = problem
    schemas = document.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)


def install(app: FastAPI, paths: dict[str, Any]) -> None:
    """Generate ``app``'s document with ``paths`` (served by plain routes),
    the recorded component schemas and every operation's errors added."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            document["paths"] = {**paths, **document["paths"]}
            document_errors(document)
            components = document.setdefault("components", {}).setdefault("schemas", {})
            for name, schema in _COMPONENTS.items():
                components.setdefault(name, schema)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
