"""The chart's options for GitOps and production clusters: KEDA or the
operator's scaler, rules in values, `helm test`, the CRD upgrade Job,
capability-gated ServiceMonitors, render-time refusals, Chart.yaml and NOTES;
and every main value combination through `helm lint --strict` and strict
`kubernetes-validate` (the API's own OpenAPI schemas, unknown fields refused).
"""

from __future__ import annotations

import json
import tarfile
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.integration.chart.test_chart import (
    ALL_ON,
    CHART,
    NAMESPACE,
    ROOT,
    by_kind,
    env_of,
    render,
    run,
)

KEDA = ["--set", "analyzer.autoscaling.keda.enabled=true",
        "--set", "analyzer.autoscaling.keda.maxReplicas=8"]
RULES = [
    "--set", "rules.high-cpu.metric=cpu.usage_percent",
    "--set-json", 'rules.high-cpu.params={"kind":"threshold","comparator":">","value":90}',
    "--set", "rules.high-cpu.for=300",
    "--set", "rules.high-cpu.severity=critical",
    "--set", "rules.web-down.params.kind=absence",
    "--set-json", 'rules.web-down.selector={"match_labels":{"role":"web"}}',
    "--set", "rules.web-down.params.timeout=600",
    "--set", "monitoredHosts.db-1.hostname=db-1.example.com",
    "--set", "monitoredHosts.db-1.expectedMetrics={cpu.usage_percent,disk.used_percent}",
    "--set", "monitoredHosts.db-1.absenceTimeout=600",
]
UPGRADE = ["--set", "crds.upgradeJob.enabled=true"]
EXISTING = ["--set", "adminKey.existingSecret=admin", "--set", "operator.apiKey.existingSecret=op"]
MINIMAL = ["--set", "operator.enabled=false", "--set", "migrations.enabled=false",
           "--set", "tests.enabled=false"]

#: The value combinations a release is expected to use.
COMBINATIONS = {
    "defaults": [],
    "all-on": ALL_ON,
    "keda": KEDA,
    "rules-and-crd-upgrade": RULES + UPGRADE,
    "existing-secrets": EXISTING,
    "two-operators": ["--set", "operator.replicas=2"],
    "no-operator": MINIMAL,
}
#: Oldest (Chart.yaml kubeVersion) and newest Kubernetes the chart is checked against.
KUBERNETES = ("1.25.0", "1.37.0")
CUSTOM = {"AlertRule", "MonitoredHost", "ScaledObject", "TriggerAuthentication", "ServiceMonitor"}


def validate_alert_rule(doc: dict[str, Any], plural: str = "alertrules") -> None:
    """Against the CRD's OpenAPI v3 schema (draft 4 semantics; CEL rules aside)."""
    crd = yaml.safe_load((ROOT / "crds" / f"{plural}.nazar.dev.yaml").read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["served"]]
    jsonschema.Draft4Validator(version["schema"]["openAPIV3Schema"]).validate(doc)


@pytest.mark.parametrize("values", COMBINATIONS.values(), ids=COMBINATIONS.keys())
def test_lint_strict_and_kubernetes_validate_strict(helm: str, values: list[str]) -> None:
    result = run(helm, "lint", str(CHART), "--strict", *values)
    assert result.returncode == 0, result.stdout + result.stderr
    docs = render(helm, *values, crds=True)
    kinds = {d["kind"] for d in docs}
    for doc in docs:
        if doc["kind"] in CUSTOM:
            continue
        for version in KUBERNETES:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                pytest.fail(f"{doc['kind']} {doc['metadata']['name']} on {version}: {error}")
    assert kinds >= {"Deployment", "Service"}
    # Custom resources against their CRDs' schemas.
    for doc in docs:
        if doc["kind"] in ("AlertRule", "MonitoredHost"):
            validate_alert_rule(doc, doc["kind"].lower() + "s")


def test_keda_replaces_the_operators_scaler(helm: str) -> None:
    docs = render(helm, *KEDA)
    (scaled,) = by_kind(docs, "ScaledObject").values()
    assert scaled["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                                "name": "nazar-analyzer"}
    # never more replicas than partitions (8 by default)
    assert (scaled["spec"]["minReplicaCount"], scaled["spec"]["maxReplicaCount"]) == (1, 8)
    triggers = scaled["spec"]["triggers"]
    assert all(t["type"] == "rabbitmq" for t in triggers)
    # The queues the analyzer really consumes: one trigger per partition.
    from nazar_common.messaging.topology import analyzer_partitions

    assert [t["metadata"] for t in triggers] == [
        {"protocol": "amqp", "queueName": q.name, "mode": "QueueLength", "value": "1000"}
        for q in analyzer_partitions(8)]
    trigger = triggers[0]
    few = render(helm, *KEDA, "--set", "config.analyzerPartitions=3")
    (scaled,) = by_kind(few, "ScaledObject").values()
    assert scaled["spec"]["maxReplicaCount"] == 3 and len(scaled["spec"]["triggers"]) == 3
    auth = by_kind(docs, "TriggerAuthentication")[trigger["authenticationRef"]["name"]]
    assert auth["spec"]["secretTargetRef"] == [
        {"parameter": "host", "name": "nazar-rabbitmq", "key": "url"}]
    deployments = by_kind(docs, "Deployment")
    assert "replicas" not in deployments["nazar-analyzer"]["spec"]  # KEDA's HPA owns it
    assert env_of(deployments["nazar-operator"])["NAZAR_SCALER_ENABLED"]["value"] == "false"
    assert "nazar-operator-scaler" not in by_kind(docs, "Role")
    # The default: the operator scales, and no KEDA object is rendered.
    docs = render(helm)
    assert not by_kind(docs, "ScaledObject") and not by_kind(docs, "TriggerAuthentication")
    deployments = by_kind(docs, "Deployment")
    assert env_of(deployments["nazar-operator"])["NAZAR_SCALER_ENABLED"]["value"] == "true"
    assert "nazar-operator-scaler" in by_kind(docs, "Role")


def test_rules_render_alert_rules(helm: str) -> None:
    docs = render(helm, *RULES)
    rules = by_kind(docs, "AlertRule")
    assert set(rules) == {"high-cpu", "web-down"}
    assert rules["high-cpu"]["metadata"]["namespace"] == NAMESPACE
    assert rules["high-cpu"]["spec"] == {
        "metric": "cpu.usage_percent", "for": 300, "severity": "critical",
        "params": {"kind": "threshold", "comparator": ">", "value": 90}}
    assert rules["web-down"]["spec"]["params"] == {"kind": "absence", "timeout": 600}
    (host,) = by_kind(docs, "MonitoredHost").values()
    assert host["metadata"] == {**host["metadata"], "name": "db-1", "namespace": NAMESPACE}
    assert host["spec"] == {"hostname": "db-1.example.com", "absenceTimeout": 600,
                            "expectedMetrics": ["cpu.usage_percent", "disk.used_percent"]}
    docs = render(helm, *RULES, "--set", "rulesNamespace=monitoring")
    assert {r["metadata"]["namespace"] for r in by_kind(docs, "AlertRule").values()} == {
        "monitoring"}
    assert not by_kind(render(helm), "AlertRule")


def test_service_monitors_only_where_their_api_exists(helm: str) -> None:
    values = ["--set", "ingest.serviceMonitor.enabled=true"]
    without = run(helm, "template", "nazar", str(CHART), "-n", NAMESPACE, *values)
    assert without.returncode == 0, without.stderr
    assert "kind: ServiceMonitor" not in without.stdout
    assert by_kind(render(helm, *values), "ServiceMonitor")  # render() passes the API
    # The install tells why nothing was created.
    notes = run(helm, "install", "nazar", str(CHART), "--dry-run=client", "-n", NAMESPACE,
                *values)
    assert notes.returncode == 0, notes.stderr
    assert "no monitoring.coreos.com/v1 ServiceMonitor API" in notes.stdout


def test_helm_test_hook(helm: str) -> None:
    docs = render(helm)
    pod = by_kind(docs, "Pod")["nazar-test"]
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    spec = pod["spec"]
    assert spec["restartPolicy"] == "Never"
    (container,) = spec["containers"]
    assert container["args"] == ["/hook/smoke-test.py"]
    env = {e["name"]: e for e in container["env"]}
    assert env["NAZAR_URL"]["value"] == "http://nazar-ingest:8080"
    assert env["NAZAR_API_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "nazar-admin"
    config = by_kind(docs, "ConfigMap")["nazar-test"]
    assert config["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert config["data"]["smoke-test.py"] == (CHART / "files" / "smoke-test.py").read_text()
    assert spec["volumes"][1]["configMap"]["name"] == "nazar-test"
    assert "nazar-test" not in by_kind(render(helm, "--set", "tests.enabled=false"), "Pod")


def test_crd_upgrade_job_ships_the_repositorys_crds(helm: str) -> None:
    assert "nazar-crds" not in by_kind(render(helm), "Job")
    docs = render(helm, *UPGRADE)
    job = by_kind(docs, "Job")["nazar-crds"]
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    (container,) = job["spec"]["template"]["spec"]["containers"]
    files = container["args"][2:]
    data = by_kind(docs, "ConfigMap")["nazar-hooks"]["data"]
    repo = {yaml.safe_load(p.read_text())["metadata"]["name"]: yaml.safe_load(p.read_text())
            for p in sorted((ROOT / "crds").glob("*.yaml"))}
    assert files == [f"/hook/{name}.json" for name in sorted(repo)]
    for name, crd in repo.items():
        assert json.loads(data[f"{name}.json"]) == crd
    # Cluster-wide, but only these CRDs can be read or changed.
    role = by_kind(docs, "ClusterRole")["nazar-crds"]
    assert {tuple(r["verbs"]): r.get("resourceNames") for r in role["rules"]} == {
        ("create",): None, ("get", "patch"): sorted(repo)}


def test_agent_gets_a_generated_ingest_key(helm: str) -> None:
    docs = render(helm, "--set", "agent.enabled=true")
    (container,) = by_kind(docs, "Job")["nazar-keys"]["spec"]["template"]["spec"]["containers"]
    assert "nazar-agent-key:api-key" in container["args"]
    ingest = env_of(by_kind(docs, "Deployment")["nazar-ingest"])
    assert ingest["NAZAR_BOOTSTRAP_AGENT_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "nazar-agent-key", "key": "api-key"}
    (daemonset,) = by_kind(docs, "DaemonSet").values()
    assert env_of_pod(daemonset)["NAZAR_AGENT_API_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "nazar-agent-key", "key": "api-key"}
    assert "nazar-agent-key" in by_kind(docs, "Role")["nazar-keys"]["rules"][1]["resourceNames"]
    # A named Secret is used as it is.
    docs = render(helm, "--set", "agent.enabled=true", "--set", "agent.apiKeySecret.name=mine")
    (container,) = by_kind(docs, "Job")["nazar-keys"]["spec"]["template"]["spec"]["containers"]
    assert not [a for a in container["args"] if "agent" in a]
    assert "NAZAR_BOOTSTRAP_AGENT_KEY" not in env_of(by_kind(docs, "Deployment")["nazar-ingest"])


def env_of_pod(workload: dict[str, Any]) -> dict[str, dict[str, Any]]:
    (container,) = workload["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e for e in container["env"]}


def kopf_rules(docs: list[dict[str, Any]]) -> dict[str, set[str]]:
    return {resource: set(rule["verbs"])
            for role in by_kind(docs, "ClusterRole").values() for rule in role["rules"]
            if rule["apiGroups"] == ["kopf.dev"] for resource in rule["resources"]}


def test_two_operator_replicas_elect_a_leader(helm: str) -> None:
    # Safe with leader election: one replica acts, the others stand by.
    docs = render(helm, "--set", "operator.replicas=2")
    operator = by_kind(docs, "Deployment")["nazar-operator"]
    assert operator["spec"]["replicas"] == 2
    assert operator["spec"]["strategy"]["type"] == "RollingUpdate"
    assert env_of(operator)["NAZAR_OPERATOR_PEERING"]["value"] == "nazar-operator"
    assert kopf_rules(docs) == {"clusterkopfpeerings": {"get", "list", "watch", "create",
                                                        "patch"}}
    # Watching namespaces: a namespaced peering object in each.
    docs = render(helm, "--set", "operator.replicas=3",
                  "--set", "operator.watchNamespaces={team-a}")
    assert set(kopf_rules(docs)) == {"kopfpeerings"}
    # One replica: nothing to elect, no peering objects needed.
    docs = render(helm)
    operator = by_kind(docs, "Deployment")["nazar-operator"]
    assert env_of(operator)["NAZAR_OPERATOR_PEERING"]["value"] == ""
    assert operator["spec"]["strategy"]["type"] == "Recreate"
    assert not kopf_rules(docs)


@pytest.mark.parametrize(
    ("values", "error"),
    [
        (["--set", "operator.scaler.minReplicas=6"],
         "operator.scaler.minReplicas (6) must not exceed operator.scaler.maxReplicas (5)"),
        # Even with the scaler off: the operator refuses these settings at start.
        (["--set", "operator.scaler.enabled=false", "--set", "operator.scaler.maxReplicas=0",
          "--set", "operator.scaler.minReplicas=0"], "maxReplicas"),
        (["--set", "operator.scaler.enabled=false", "--set", "operator.scaler.minReplicas=9"],
         "must not exceed operator.scaler.maxReplicas"),
        (["--set", "analyzer.autoscaling.keda.enabled=true",
          "--set", "analyzer.autoscaling.keda.minReplicas=3",
          "--set", "analyzer.autoscaling.keda.maxReplicas=2"],
         "analyzer.autoscaling.keda.minReplicas (3) must not exceed"),
        (["--set", "analyzer.autoscaling.keda.enabled=true", "--set", "analyzer.enabled=false"],
         "keda.enabled needs analyzer.enabled"),
        (["--set", "operator.enabled=false", "--set", "rules.a.params.kind=absence"],
         "only the operator applies"),
        (["--set", "operator.enabled=false", "--set", "monitoredHosts.a.hostname=a"],
         "only the operator applies"),
        (["--set", "rules.a.metric=cpu"], "params"),
        (["--set", "monitoredHosts.a.labels.x=y"], "hostname"),
        (["--set", "rules.Bad_Name.params.kind=absence"], "Bad_Name"),
        (["--set", "ingest.ingress.enabled=true", "--set-json", "ingest.ingress.hosts=[]"],
         "ingest.ingress.hosts"),
        (["--set", "ingest.enabled=false"], "tests.enabled"),
        (["--set", "operator.apiKey.key="], "apiKey"),
        (["--set", "operator.replicas=2", "--set", "operator.leaderElection.enabled=false"],
         "operator.replicas=2 needs operator.leaderElection.enabled"),
        (["--set", "crds.upgradeJob.enable=true"], "enable"),
    ],
)
def test_bad_combinations_fail_at_render(helm: str, values: list[str], error: str) -> None:
    result = run(helm, "template", "nazar", str(CHART), *values)
    assert result.returncode != 0
    assert error in result.stderr, result.stderr


def test_chart_metadata() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    for field in ("home", "sources", "maintainers", "kubeVersion", "icon", "annotations"):
        assert chart.get(field), field
    crds = yaml.safe_load(chart["annotations"]["artifacthub.io/crds"])
    assert {c["name"] for c in crds} <= {p.stem for p in (ROOT / "crds").glob("*.yaml")}
    assert {c["kind"] for c in crds} >= {"AlertRule", "MonitoredHost"}


def test_notes_point_at_what_the_chart_ships(helm: str) -> None:
    result = run(helm, "install", "nazar", str(CHART), "--dry-run=client", "-n", NAMESPACE,
                 *RULES, *KEDA)
    assert result.returncode == 0, result.stderr
    notes = result.stdout.split("NOTES:", 1)[1]
    assert "crds/examples" not in notes  # not in the packaged chart
    assert "helm test nazar -n nazar" in notes
    assert "2 AlertRule(s) and 1 MonitoredHost(s)" in notes
    assert "KEDA scales nazar-analyzer between 1 and 8" in notes
    assert "kubectl apply --server-side --force-conflicts -f nazar/crds/" in notes
    # The example AlertRule in NOTES, saved as it is shown, is a valid resource.
    example = notes.split("(fields: kubectl explain alertrule.spec)\n", 1)[1].split("Then:")[0]
    validate_alert_rule(yaml.safe_load(example))


def test_packaged_chart_has_what_it_uses(helm: str, tmp_path: Any) -> None:
    result = run(helm, "package", str(CHART), "-d", str(tmp_path))
    assert result.returncode == 0, result.stderr
    (archive,) = tmp_path.glob("nazar-*.tgz")
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    for needed in ("files/bootstrap.py", "files/smoke-test.py", "values.schema.json",
                   *(f"crds/{p.name}" for p in (ROOT / "crds").glob("*.yaml"))):
        assert f"nazar/{needed}" in names, needed
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    # The packaged chart installs as the directory does.
    result = run(helm, "template", "nazar", str(archive), "-n", NAMESPACE)
    assert result.returncode == 0, result.stderr
