"""The CustomResourceDefinitions: structural, in step with RuleSpec, examples valid."""

from __future__ import annotations

import copy
import typing
from pathlib import Path
from typing import Any

import celpy
import jsonschema
import pytest
import yaml
from pydantic import BaseModel, ValidationError

from nazar_common.schemas.config import (
    WRITE,
    AbsenceParams,
    AnomalyParams,
    BaselineParams,
    BurnRateParams,
    ForecastParams,
    HostSelector,
    RuleSpec,
    ThresholdParams,
)
from nazar_operator.reconcile import alert_rule_body, monitored_host_bodies

ROOT = Path(__file__).resolve().parents[3]
CRDS = ROOT / "crds"
EXAMPLES = CRDS / "examples"
CHART_CRDS = ROOT / "charts" / "nazar" / "crds"


def load(name: str) -> dict[str, Any]:
    return yaml.safe_load((CRDS / name).read_text())


def schema_of(crd: dict[str, Any]) -> dict[str, Any]:
    (version,) = crd["spec"]["versions"]
    return version["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]


def aliases(model: type[BaseModel]) -> set[str]:
    return {info.alias or name for name, info in model.model_fields.items()}


def literal_values(model: type[BaseModel], field: str) -> set[str]:
    return set(typing.get_args(model.model_fields[field].annotation))


ALERT_RULE = load("alertrules.nazar.dev.yaml")
MONITORED_HOST = load("monitoredhosts.nazar.dev.yaml")


@pytest.mark.parametrize(
    ("crd", "kind", "plural", "short"),
    [(ALERT_RULE, "AlertRule", "alertrules", "nar"),
     (MONITORED_HOST, "MonitoredHost", "monitoredhosts", "nmh")],
)
def test_crd_identity(crd: dict[str, Any], kind: str, plural: str, short: str) -> None:
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["kind"] == "CustomResourceDefinition"
    assert crd["metadata"]["name"] == f"{plural}.nazar.dev"
    spec = crd["spec"]
    assert (spec["group"], spec["scope"]) == ("nazar.dev", "Namespaced")
    assert spec["names"]["kind"] == kind and spec["names"]["plural"] == plural
    assert spec["names"]["shortNames"] == [short]
    assert spec["names"]["categories"] == ["nazar"]
    (version,) = spec["versions"]
    assert version["name"] == "v1alpha1" and version["served"] and version["storage"]
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: c for c in version["additionalPrinterColumns"]}
    assert {"Severity", "Ready", "Reason", "Age"} <= set(columns)
    assert columns["Ready"]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].status'
    assert columns["Reason"]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].reason'
    status = schema_of(crd)["properties"]["status"]["properties"]
    assert status["observedGeneration"]["type"] == "integer"
    assert status["ruleVersions"]["additionalProperties"]["type"] == "integer"
    condition = status["conditions"]["items"]["properties"]
    assert set(condition) == {"type", "status", "reason", "message", "lastTransitionTime",
                              "observedGeneration"}


def test_alert_rule_shows_its_firing_alerts() -> None:
    (version,) = ALERT_RULE["spec"]["versions"]
    columns = {c["name"]: c for c in version["additionalPrinterColumns"]}
    assert columns["Firing"]["jsonPath"] == ".status.firing"
    status = schema_of(ALERT_RULE)["properties"]["status"]["properties"]
    assert status["firing"]["type"] == "integer"
    assert status["lastFiredAt"]["format"] == "date-time"


def test_expected_metrics_are_a_set() -> None:
    spec = schema_of(MONITORED_HOST)["properties"]["spec"]["properties"]
    assert spec["expectedMetrics"]["x-kubernetes-list-type"] == "set"


def cel_violations(schema: dict[str, Any], value: Any) -> list[str]:
    """Messages of the ``x-kubernetes-validations`` rules ``value`` breaks, evaluated
    with a CEL interpreter at every node of the schema, as the API server does."""
    out: list[str] = []
    for check in schema.get("x-kubernetes-validations") or ():
        env = celpy.Environment()
        program = env.program(env.compile(check["rule"]))
        result = program.evaluate({"self": celpy.json_to_cel(value)})
        if isinstance(result, Exception) or not bool(result):
            out.append(check["message"])
    if isinstance(value, dict):
        for key, child in value.items():
            sub = (schema.get("properties") or {}).get(key) or schema.get("additionalProperties")
            if isinstance(sub, dict):
                out += cel_violations(sub, child)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for child in value:
            out += cel_violations(schema["items"], child)
    return out


def alert_rule_doc(spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "nazar.dev/v1alpha1", "kind": "AlertRule",
            "metadata": {"name": "x"}, "spec": spec}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"kind": "threshold"}, "needs params.value"),
        ({"kind": "threshold", "value": 1, "band": 2}, "baseline rules only"),
        ({"kind": "baseline", "value": 1}, "threshold rules only"),
        ({"kind": "absence", "score_threshold": 0.5}, "anomaly rules only"),
        ({"kind": "anomaly", "after": 60}, "absence rules only"),
        ({"kind": "threshold", "value": 90, "recovery_value": 95}, "resolving side"),
        ({"kind": "threshold", "comparator": "<", "value": 10, "recovery_value": 5},
         "resolving side"),
        ({"kind": "baseline", "min_history": 7200, "window": 3600}, "must not exceed window"),
        ({"kind": "anomaly", "slo": "api"}, "burn_rate rules only"),
        ({"kind": "burn_rate"}, "needs params.slo"),
        ({"kind": "absence", "direction": "above"}, "baseline rules only"),
    ],
)
def test_cel_rules_refuse_what_the_api_would(params: dict[str, Any], message: str) -> None:
    doc = alert_rule_doc({"metric": "m", "params": params})
    validator(ALERT_RULE).validate(doc)  # the structural schema alone lets it through
    violations = cel_violations(schema_of(ALERT_RULE), doc)
    assert any(message in v for v in violations), violations
    with pytest.raises(ValidationError):  # and the API refuses it too
        RuleSpec.model_validate({"name": "x", **doc["spec"]}, context=WRITE)


@pytest.mark.parametrize(
    "params",
    [
        {"kind": "threshold", "value": 90, "recovery_value": 80},
        {"kind": "threshold", "comparator": "<=", "value": 10, "recovery_value": 15},
        {"kind": "threshold", "comparator": "==", "value": 1, "recovery_value": 3},
        {"kind": "baseline", "min_history": 3600, "window": 3600},
        {"kind": "anomaly", "score_threshold": 0.7},
        {"kind": "absence", "after": 60},
        {"kind": "forecast", "value": 90, "direction": "above"},
    ],
)
def test_cel_rules_accept_valid_rules(params: dict[str, Any]) -> None:
    doc = alert_rule_doc({"metric": "m", "params": params})
    assert cel_violations(schema_of(ALERT_RULE), doc) == []
    alert_rule_body("mon", "x", doc["spec"])


def _walk(node: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out = [(path, node)]
    for key, child in (node.get("properties") or {}).items():
        out += _walk(child, f"{path}.{key}")
    if isinstance(node.get("items"), dict):
        out += _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        out += _walk(node["additionalProperties"], f"{path}{{}}")
    return out


BANNED = ("$ref", "patternProperties", "definitions", "x-kubernetes-preserve-unknown-fields",
          "oneOf", "anyOf", "allOf", "not")


@pytest.mark.parametrize("crd", [ALERT_RULE, MONITORED_HOST])
def test_schemas_are_structural(crd: dict[str, Any]) -> None:
    for path, node in _walk(schema_of(crd)):
        assert "type" in node, f"{path} has no type"
        for banned in BANNED:
            assert banned not in node, f"{path} uses {banned}"
        if "additionalProperties" in node:
            assert "properties" not in node, f"{path} mixes properties and additionalProperties"
            assert isinstance(node["additionalProperties"], dict)


def test_alert_rule_spec_mirrors_rule_spec() -> None:
    spec = schema_of(ALERT_RULE)["properties"]["spec"]
    assert set(spec["properties"]) == aliases(RuleSpec) - {"name"}
    assert set(spec["properties"]["selector"]["properties"]) == aliases(HostSelector)
    params = spec["properties"]["params"]["properties"]
    models = (ThresholdParams, BaselineParams, AnomalyParams, AbsenceParams, ForecastParams,
              BurnRateParams)
    assert set(params) == set().union(*(aliases(m) for m in models))
    assert set(params["kind"]["enum"]) == {m.model_fields["kind"].default for m in models}
    assert set(params["comparator"]["enum"]) == literal_values(ThresholdParams, "comparator")
    assert set(params["direction"]["enum"]) == literal_values(BaselineParams, "direction")
    assert set(params["seasonality"]["enum"]) == literal_values(BaselineParams, "seasonality")
    assert set(spec["properties"]["severity"]["enum"]) == literal_values(RuleSpec, "severity")
    host = schema_of(MONITORED_HOST)["properties"]["spec"]["properties"]
    assert set(host["severity"]["enum"]) == literal_values(RuleSpec, "severity")


def validator(crd: dict[str, Any]) -> jsonschema.Draft4Validator:
    # OpenAPI v3.0 schemas use draft-4 style boolean exclusiveMinimum.
    return jsonschema.Draft4Validator(copy.deepcopy(schema_of(crd)))


EXAMPLE_FILES = sorted(EXAMPLES.glob("*.yaml"))


def test_there_are_examples_of_both_kinds() -> None:
    kinds = {yaml.safe_load(p.read_text())["kind"] for p in EXAMPLE_FILES}
    assert kinds == {"AlertRule", "MonitoredHost"}


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_examples_are_valid_resources_and_rules(path: Path) -> None:
    doc = yaml.safe_load(path.read_text())
    assert doc["apiVersion"] == "nazar.dev/v1alpha1"
    meta = doc["metadata"]
    if doc["kind"] == "AlertRule":
        validator(ALERT_RULE).validate(doc)
        assert cel_violations(schema_of(ALERT_RULE), doc) == []
        alert_rule_body(meta["namespace"], meta["name"], doc["spec"])
    else:
        validator(MONITORED_HOST).validate(doc)
        monitored_host_bodies(meta["namespace"], meta["name"], doc["spec"])


@pytest.mark.parametrize(
    "spec",
    [
        {"metric": "m", "params": {"kind": "threshold", "value": 1}, "severity": "fatal"},
        {"metric": "m", "params": {"kind": "weird"}},
        {"metric": "m", "params": {"kind": "baseline", "band": 0}},
        {"metric": "bad metric", "params": {"kind": "absence"}},
        {"metric": "m"},
        {"params": {"kind": "burn_rate", "slo": "s", "windows": [
            {"long": 3600, "short": 300, "factor": 0}]}},
        {"params": {"kind": "burn_rate", "slo": "Not A Name"}},
    ],
)
def test_schema_rejects_invalid_alert_rules(spec: dict[str, Any]) -> None:
    doc = {"apiVersion": "nazar.dev/v1alpha1", "kind": "AlertRule",
           "metadata": {"name": "x"}, "spec": spec}
    with pytest.raises(jsonschema.ValidationError):
        validator(ALERT_RULE).validate(doc)


def test_chart_ships_the_same_crds() -> None:
    sources = {p.name: p.read_bytes() for p in CRDS.glob("*.yaml")}
    copies = {p.name: p.read_bytes() for p in CHART_CRDS.glob("*.yaml")}
    assert copies == sources, (
        "charts/nazar/crds/ differs from crds/: run `cp crds/*.yaml charts/nazar/crds/`"
    )
