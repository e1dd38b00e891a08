"""The Helm chart: lint, render with several value sets, check what it renders.

Rendered objects are checked offline: every core object must survive a round
trip through the Kubernetes client's OpenAPI models unchanged (a misspelt or
misplaced field is dropped by the models and shows up as a difference), and
the objects must fit together (selectors, ports, Secrets, images, probes).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "charts" / "nazar"
NAMESPACE = "nazar"

ALL_ON = [
    "--set", "ingest.ingress.enabled=true",
    "--set", "ingest.ingress.className=nginx",
    "--set", "ingest.ingress.tls[0].secretName=nazar-tls",
    "--set", "ingest.ingress.tls[0].hosts[0]=nazar.example.com",
    "--set", "ingest.serviceMonitor.enabled=true",
    "--set", "ingest.serviceMonitor.additionalLabels.release=kube-prometheus-stack",
    "--set", "analyzer.serviceMonitor.enabled=true",
    "--set", "notifier.serviceMonitor.enabled=true",
    "--set", "analyzer.podDisruptionBudget.enabled=true",
    "--set", "notifier.podDisruptionBudget.enabled=true",
    "--set", "operator.podDisruptionBudget.enabled=true",
    "--set", "agent.enabled=true",
    "--set", "agent.apiKeySecret.name=agent-key",
    "--set", "agent.labels.env=prod",
    "--set", "global.imageRegistry=registry.example.com/acme",
    "--set", "operator.watchNamespaces={team-a,team-b}",
]
# A cluster with the Prometheus Operator: its API is what ServiceMonitors need
# (`helm template` flags, not values: `helm lint` takes no --api-versions).
PROMETHEUS_OPERATOR = ["--api-versions", "monitoring.coreos.com/v1"]

MODELS = {
    "Deployment": "V1Deployment",
    "DaemonSet": "V1DaemonSet",
    "Service": "V1Service",
    "Secret": "V1Secret",
    "ServiceAccount": "V1ServiceAccount",
    "Job": "V1Job",
    "Role": "V1Role",
    "RoleBinding": "V1RoleBinding",
    "ClusterRole": "V1ClusterRole",
    "ClusterRoleBinding": "V1ClusterRoleBinding",
    "PodDisruptionBudget": "V1PodDisruptionBudget",
    "Ingress": "V1Ingress",
    "ConfigMap": "V1ConfigMap",
    "Pod": "V1Pod",
}
API_VERSIONS = {
    "Deployment": "apps/v1", "DaemonSet": "apps/v1", "Service": "v1", "Secret": "v1",
    "ServiceAccount": "v1", "Job": "batch/v1", "Role": "rbac.authorization.k8s.io/v1",
    "RoleBinding": "rbac.authorization.k8s.io/v1",
    "ClusterRole": "rbac.authorization.k8s.io/v1",
    "ClusterRoleBinding": "rbac.authorization.k8s.io/v1",
    "PodDisruptionBudget": "policy/v1", "Ingress": "networking.k8s.io/v1",
    "ServiceMonitor": "monitoring.coreos.com/v1",
    "CustomResourceDefinition": "apiextensions.k8s.io/v1",
    "ConfigMap": "v1", "Pod": "v1", "AlertRule": "nazar.dev/v1alpha1",
    "ScaledObject": "keda.sh/v1alpha1", "TriggerAuthentication": "keda.sh/v1alpha1",
}


def run(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm, *args], capture_output=True, text=True, timeout=60,
                          check=False)


def render(helm: str, *values: str, crds: bool = False) -> list[dict[str, Any]]:
    args = ["template", "nazar", str(CHART), "--namespace", NAMESPACE, *PROMETHEUS_OPERATOR,
            *values]
    if crds:
        args.append("--include-crds")
    result = run(helm, *args)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def _prune(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _prune(v) for k, v in value.items() if (v is not None and v != {}) or k in
                ("emptyDir", "status")}
    if isinstance(value, list):
        return [_prune(v) for v in value]
    return value


def roundtrip(doc: dict[str, Any]) -> dict[str, Any]:
    api = kubernetes.client.ApiClient()
    model = api.deserialize(json.dumps(doc), MODELS[doc["kind"]], "application/json")
    return _prune(api.sanitize_for_serialization(model))  # type: ignore[no-any-return]


def pod_specs(docs: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (d["metadata"]["name"], d["spec"]["template"]["spec"])
        for d in docs if d["kind"] in ("Deployment", "DaemonSet", "Job")
    ]


def test_lint_default_and_all_features(helm: str) -> None:
    for values in ([], ALL_ON):
        result = run(helm, "lint", str(CHART), "--strict", *values)
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("values", [[], ALL_ON], ids=["defaults", "all-on"])
def test_rendered_objects_are_well_formed(helm: str, values: list[str]) -> None:
    docs = render(helm, *values, crds=True)
    for doc in docs:
        kind = doc["kind"]
        assert doc["apiVersion"] == API_VERSIONS[kind], kind
        assert doc["metadata"]["name"]
        if kind in MODELS:
            assert _prune(doc) == roundtrip(doc), f"{kind} {doc['metadata']['name']}"
    assert {"alertrules.nazar.dev", "monitoredhosts.nazar.dev", "kopfpeerings.kopf.dev",
            "clusterkopfpeerings.kopf.dev"} == set(by_kind(docs, "CustomResourceDefinition"))


def test_defaults(helm: str) -> None:
    docs = render(helm)
    deployments = by_kind(docs, "Deployment")
    assert set(deployments) == {f"nazar-{c}" for c in ("ingest", "analyzer", "notifier",
                                                        "operator")}
    assert not by_kind(docs, "DaemonSet") and not by_kind(docs, "ServiceMonitor")
    assert not by_kind(docs, "Ingress")
    # The operator owns the analyzer's replicas while it scales it.
    assert "replicas" not in deployments["nazar-analyzer"]["spec"]
    assert deployments["nazar-ingest"]["spec"]["replicas"] == 2
    for name, deployment in deployments.items():
        component = name.removeprefix("nazar-")
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["image"] == f"nazar-{component}:0.1.0"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        expected = "/healthz" if component == "operator" else "/readyz"
        assert container["readinessProbe"]["httpGet"]["path"] == expected
        port = {p["name"]: p["containerPort"] for p in container["ports"]}["http"]
        assert port == {"ingest": 8080, "analyzer": 8081, "notifier": 8082,
                        "operator": 8083}[component]
        env = {e["name"]: e for e in container["env"]}
        assert env["NAZAR_AMQP_URL"]["valueFrom"]["secretKeyRef"] == {
            "name": "nazar-rabbitmq", "key": "url"}
        if component != "operator":
            assert env["NAZAR_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
                "name": "nazar-database", "key": "url"}


def env_of(deployment: dict[str, Any]) -> dict[str, dict[str, Any]]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e for e in container["env"]}


def test_renders_are_identical(helm: str) -> None:
    # `helm template` is how Argo CD renders: a random value in the output would
    # change on every sync (a new admin key each time, locking the operator out).
    for values in ([], ALL_ON):
        result = [run(helm, "template", "nazar", str(CHART), "-n", NAMESPACE, *values)
                  for _ in range(2)]
        assert result[0].returncode == 0, result[0].stderr
        assert result[0].stdout == result[1].stdout
    assert not [d for d in render(helm, *ALL_ON) if d["kind"] == "Secret"]


def test_key_secrets_are_created_once_by_a_hook(helm: str) -> None:
    docs = render(helm)
    job = by_kind(docs, "Job")["nazar-keys"]
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    # Before the migrations (weight 0), after its RBAC and script (-20, -30).
    assert int(job["metadata"]["annotations"]["helm.sh/hook-weight"]) < 0
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["/hook/bootstrap.py", "secrets", "nazar-admin:admin-key",
                                 "nazar-operator-key:api-key"]
    script = by_kind(docs, "ConfigMap")["nazar-hooks"]["data"]["bootstrap.py"]
    assert script == (CHART / "files" / "bootstrap.py").read_text()
    role = by_kind(docs, "Role")["nazar-keys"]
    assert {tuple(r["verbs"]): r.get("resourceNames") for r in role["rules"]} == {
        ("create",): None, ("get", "patch"): ["nazar-admin", "nazar-operator-key"]}
    # Ingest creates both keys; the operator uses its own, never the admin key.
    deployments = by_kind(docs, "Deployment")
    ingest = env_of(deployments["nazar-ingest"])
    assert ingest["NAZAR_BOOTSTRAP_ADMIN_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "nazar-admin", "key": "admin-key"}
    assert ingest["NAZAR_BOOTSTRAP_OPERATOR_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "nazar-operator-key", "key": "api-key"}
    operator = env_of(deployments["nazar-operator"])
    assert operator["NAZAR_API_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "nazar-operator-key", "key": "api-key"}
    assert operator["NAZAR_API_URL"]["value"] == "http://nazar-ingest:8080"
    # Existing Secrets named: nothing to create, no hook at all.
    docs = render(helm, "--set", "adminKey.existingSecret=mine",
                  "--set", "operator.apiKey.existingSecret=op", "--set", "operator.apiKey.key=k")
    assert not by_kind(docs, "Job").keys() - {"nazar-migrations"}
    assert not by_kind(docs, "ConfigMap").keys() - {"nazar-test"}
    assert not by_kind(docs, "ServiceAccount").keys() - {"nazar-operator"}
    ingest = env_of(by_kind(docs, "Deployment")["nazar-ingest"])
    assert ingest["NAZAR_BOOTSTRAP_ADMIN_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "mine"
    operator = env_of(by_kind(docs, "Deployment")["nazar-operator"])
    assert operator["NAZAR_API_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "op", "key": "k"}
    # Only the admin key to create without an operator.
    docs = render(helm, "--set", "operator.enabled=false")
    (container,) = by_kind(docs, "Job")["nazar-keys"]["spec"]["template"]["spec"]["containers"]
    assert container["args"][2:] == ["nazar-admin:admin-key"]
    assert "NAZAR_BOOTSTRAP_OPERATOR_KEY" not in env_of(by_kind(docs, "Deployment")["nazar-ingest"])


def test_migrations_hook(helm: str) -> None:
    job = by_kind(render(helm), "Job")["nazar-migrations"]
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["nazar", "migrate"]
    assert container["image"] == "nazar-ingest:0.1.0"
    assert "nazar-migrations" not in by_kind(render(helm, "--set", "migrations.enabled=false"),
                                              "Job")


def test_security_contexts(helm: str) -> None:
    for name, spec in pod_specs(render(helm, *ALL_ON)):
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] == 10001, name
        # Only the operator and the hook that creates the key Secrets talk to Kubernetes.
        assert spec.get("automountServiceAccountToken") is False or name in (
            "nazar-operator", "nazar-keys"), name
        for container in spec["containers"]:
            sc = container["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["allowPrivilegeEscalation"] is False, name
            mounts = {m["mountPath"] for m in container["volumeMounts"]}
            assert "/tmp" in mounts, name


def test_selectors_services_and_monitors_fit(helm: str) -> None:
    docs = render(helm, *ALL_ON)
    workloads = {**by_kind(docs, "Deployment"), **by_kind(docs, "DaemonSet")}
    for w in workloads.values():
        selector = w["spec"]["selector"]["matchLabels"]
        assert selector.items() <= w["spec"]["template"]["metadata"]["labels"].items()

    def matches(selector: dict[str, str]) -> list[str]:
        return [n for n, w in workloads.items()
                if selector.items() <= w["spec"]["template"]["metadata"]["labels"].items()]

    services = by_kind(docs, "Service")
    for name, svc in services.items():
        assert matches(svc["spec"]["selector"]) == [name]
        assert svc["spec"]["ports"][0]["targetPort"] == "http"
    monitors = by_kind(docs, "ServiceMonitor")
    assert set(monitors) == {"nazar-ingest", "nazar-analyzer", "nazar-notifier"}
    for name, sm in monitors.items():
        selected = [n for n, s in services.items()
                    if sm["spec"]["selector"]["matchLabels"].items()
                    <= s["metadata"]["labels"].items()]
        assert selected == [name]
        assert sm["spec"]["endpoints"][0]["port"] == "http"
        assert sm["spec"]["endpoints"][0]["path"] == "/metrics"
    assert monitors["nazar-ingest"]["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    for name, pdb in by_kind(docs, "PodDisruptionBudget").items():
        assert matches(pdb["spec"]["selector"]["matchLabels"]) == [name]
    (ingress,) = by_kind(docs, "Ingress").values()
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "nazar-ingest", "port": {"name": "http"}}
    assert ingress["spec"]["ingressClassName"] == "nginx"
    # Ingest's internal URLs point at the real Services.
    env = {e["name"]: e.get("value") for e in
           workloads["nazar-ingest"]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["NAZAR_ANALYZER_URL"] == "http://nazar-analyzer:8081"
    assert env["NAZAR_NOTIFIER_URL"] == "http://nazar-notifier:8082"


def test_agent_daemonset(helm: str) -> None:
    (ds,) = by_kind(render(helm, *ALL_ON), "DaemonSet").values()
    spec = ds["spec"]["template"]["spec"]
    assert spec["hostPID"] is True and spec["hostNetwork"] is True
    assert spec["dnsPolicy"] == "ClusterFirstWithHostNet"
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["proc"]["hostPath"]["path"] == "/proc"
    (container,) = spec["containers"]
    assert container["image"] == "registry.example.com/acme/nazar-agent:0.1.0"
    env = {e["name"]: e for e in container["env"]}
    assert env["NAZAR_AGENT_API_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "agent-key"
    assert env["NAZAR_AGENT_HOSTNAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    assert env["NAZAR_AGENT_LABELS"]["value"] == '{"env":"prod"}'
    assert env["NAZAR_AGENT_URL"]["value"] == "http://nazar-ingest:8080"


def test_operator_rbac(helm: str) -> None:
    docs = render(helm)
    role = by_kind(docs, "ClusterRole")["nazar-operator"]
    rules = {(tuple(r["apiGroups"]), tuple(r["resources"])): set(r["verbs"])
             for r in role["rules"]}
    assert {"list", "watch", "patch"} <= rules[("nazar.dev",), ("alertrules", "monitoredhosts")]
    assert "patch" in rules[("nazar.dev",), ("alertrules/status", "monitoredhosts/status")]
    assert "create" in rules[("",), ("events",)]
    # The scaler: the analyzer's scale subresource, nothing else.
    (rule,) = by_kind(docs, "Role")["nazar-operator-scaler"]["rules"]
    assert rule == {"apiGroups": ["apps"], "resources": ["deployments/scale"],
                    "resourceNames": ["nazar-analyzer"], "verbs": ["get", "patch", "update"]}
    assert "nazar-operator" in by_kind(docs, "ClusterRoleBinding")
    # Watching given namespaces binds the role there only.
    docs = render(helm, "--set", "operator.watchNamespaces={team-a,team-b}")
    bindings = [b for b in docs if b["kind"] == "RoleBinding"
                and b["roleRef"]["name"] == "nazar-operator"]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    assert "nazar-operator" not in by_kind(docs, "ClusterRoleBinding")
    operator = by_kind(docs, "Deployment")["nazar-operator"]
    env = {e["name"]: e.get("value") for e in
           operator["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["NAZAR_OPERATOR_NAMESPACES"] == "team-a,team-b"
    assert env["NAZAR_SCALER_DEPLOYMENT"] == "nazar-analyzer"
    assert operator["spec"]["template"]["spec"]["serviceAccountName"] == "nazar-operator"


def test_scaler_off_leaves_replicas_to_the_chart(helm: str) -> None:
    docs = render(helm, "--set", "operator.scaler.enabled=false", "--set", "analyzer.replicas=3")
    assert by_kind(docs, "Deployment")["nazar-analyzer"]["spec"]["replicas"] == 3
    assert "nazar-operator-scaler" not in by_kind(docs, "Role")
    env = env_of(by_kind(docs, "Deployment")["nazar-operator"])
    assert env["NAZAR_SCALER_ENABLED"]["value"] == "false"


def test_partition_count_reaches_every_party(helm: str) -> None:
    """Ingest routes, the analyzer consumes and the scaler caps by one count."""
    docs = render(helm, "--set", "config.analyzerPartitions=12")
    deployments = by_kind(docs, "Deployment")
    for name in ("nazar-ingest", "nazar-analyzer", "nazar-operator"):
        env = {e["name"]: e.get("value")
               for e in deployments[name]["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["NAZAR_ANALYZER_PARTITIONS"] == "12", name


@pytest.mark.parametrize(
    ("values", "error"),
    [
        (["--set", "config.analyzerPartitions=0"], "analyzerPartitions"),
        (["--set", "ingest.replicas=two"], "replicas"),
        (["--set", "ingest.replicaz=2"], "replicaz"),
        (["--set", "config.storageBackend=mysql"], "storageBackend"),
        (["--set", "database.existingSecret="], "existingSecret"),
        (["--set", "operator.watchNamespaces={Bad_NS}"], "watchNamespaces"),
    ],
)
def test_invalid_values_are_refused(helm: str, values: list[str], error: str) -> None:
    result = run(helm, "template", "nazar", str(CHART), *values)
    assert result.returncode != 0
    assert error in result.stderr


def test_notes_render(helm: str) -> None:
    result = run(helm, "install", "nazar", str(CHART), "--dry-run=client", "--namespace",
                 NAMESPACE, *ALL_ON)
    assert result.returncode == 0, result.stderr
    assert "kubectl -n nazar get secret nazar-admin" in result.stdout
    assert "https://nazar.example.com" in result.stdout
