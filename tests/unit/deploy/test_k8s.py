"""deploy/k8s (kustomize) cannot be applied here (no cluster), so it is checked against what the
local profile runs: the app ids, ports and sidecar settings of dapr.yaml and the component names
and scopes of components/local (read at test time), the access control pairs, and the metadata
names of the Dapr component reference; and it is rendered when kubectl or kustomize is installed."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
K8S = ROOT / "deploy/k8s"
RUN_FILE = yaml.safe_load((ROOT / "dapr.yaml").read_text())
COMMON = RUN_FILE["common"]
APPS = {app["appID"]: app for app in RUN_FILE["apps"]}

# Who may call whom through Dapr service invocation (the called app's Configuration says so).
ALLOWED_CALLS = {
    ("gateway", "ingestion"),
    ("gateway", "training"),
    ("gateway", "registry"),
    ("gateway", "inference"),
    ("training", "ingestion"),
    ("training", "registry"),
    ("inference", "registry"),
    ("notifier", "inference"),
    ("gateway", "monitor"),
    ("monitor", "registry"),
    ("monitor", "ingestion"),
    ("monitor", "training"),
    ("registry", "monitor"),  # a rollout's evidence
}

# Metadata names of each component type, as the Dapr component reference spells them
# (docs.dapr.io: setup-dynamodb, setup-aws-snssqs, aws-secret-manager, s3; and components-contrib's
# metadata.yaml of each), the AWS authentication fields included.
AWS_AUTH = {"region", "endpoint", "accessKey", "secretKey", "sessionToken"}
REFERENCE = {
    "state.aws.dynamodb": AWS_AUTH | {"table", "ttlAttributeName", "partitionKey", "actorStateStore"},
    "pubsub.aws.snssqs": AWS_AUTH
    | {
        "consumerID",
        "messageVisibilityTimeout",
        "messageRetryLimit",
        "messageReceiveLimit",
        "sqsDeadLettersQueueName",
        "messageWaitTimeSeconds",
        "messageMaxNumber",
        "fifo",
        "fifoMessageGroupID",
        "disableEntityManagement",
        "disableDeleteOnRetryLimit",
        "assetsManagementTimeoutSeconds",
        "concurrencyMode",
    },
    "secretstores.aws.secretmanager": AWS_AUTH | {"multipleKeyValuesPerSecret"},
    "bindings.aws.s3": AWS_AUTH
    | {"bucket", "forcePathStyle", "decodeBase64", "encodeBase64", "disableSSL", "insecureSSL", "storageClass"},
}
CREDENTIALS = {"accessKey", "secretKey", "sessionToken"}


def load(folder: Path) -> list[dict]:
    """The documents a kustomization includes, following its resources (files and folders)."""
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    docs = []
    for resource in kustomization.get("resources", []):
        path = folder / resource
        if path.is_dir():
            docs += load(path)
        else:
            docs += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return docs


BASE = load(K8S / "base")
OVERLAY = load(K8S / "overlays/aws")
PLACEHOLDERS = load(K8S / "placeholder-secrets")
NAMESPACE = yaml.safe_load((K8S / "base/kustomization.yaml").read_text())["namespace"]


def of_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


DEPLOYMENTS = {
    d["spec"]["template"]["metadata"]["annotations"]["dapr.io/app-id"]: d for d in of_kind(BASE, "Deployment").values()
}
CONFIGURATIONS = of_kind(BASE, "Configuration")
# The local profile's components but its componentsecrets (the servers' passwords): on
# Kubernetes the built-in `kubernetes` secret store plays that part.
LOCAL = {
    doc["metadata"]["name"]: doc
    for doc in (yaml.safe_load(p.read_text()) for p in sorted((ROOT / "components/local").glob("*.yaml")))
    if doc["kind"] == "Component" and doc["metadata"]["name"] != "componentsecrets"
}


def test_every_app_of_the_run_file_has_a_deployment_and_every_deployment_is_an_app():
    assert set(DEPLOYMENTS) == set(APPS)


@pytest.mark.parametrize("app_id", sorted(APPS))
def test_every_deployment_carries_the_run_files_sidecar_settings(app_id):
    deployment = DEPLOYMENTS[app_id]
    pod = deployment["spec"]["template"]
    notes = pod["metadata"]["annotations"]
    assert notes["dapr.io/enabled"] == "true"
    assert int(notes["dapr.io/app-port"]) == APPS[app_id]["appPort"]
    assert notes["dapr.io/app-protocol"] == COMMON["appProtocol"]
    assert notes["dapr.io/enable-app-health-check"] == str(COMMON["enableAppHealthCheck"]).lower()
    assert notes["dapr.io/app-health-check-path"] == COMMON["appHealthCheckPath"]
    assert notes["dapr.io/max-body-size"] == COMMON["maxBodySize"]
    assert notes["dapr.io/config"] in CONFIGURATIONS
    # Each app its own pair of tokens, from Secrets the app container reads too.
    (container,) = pod["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    for annotation, variable in (
        ("dapr.io/api-token-secret", "DAPR_API_TOKEN"),
        ("dapr.io/app-token-secret", "APP_API_TOKEN"),
    ):
        secret = notes[annotation]
        assert secret.startswith(f"{app_id}-")
        assert env[variable]["valueFrom"]["secretKeyRef"] == {"name": secret, "key": "token"}
    metrics = (APPS[app_id].get("env") or {}).get("DAPRML_METRICS_PORT")
    http = {"name": "http", "containerPort": APPS[app_id]["appPort"]}
    assert container["ports"] == ([http, {"name": "metrics", "containerPort": int(metrics)}] if metrics else [http])
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    # The kubelet restarts a sidecar that stops answering (the injector owns daprd's probes).
    probe = {k.removeprefix("dapr.io/sidecar-liveness-probe-"): int(v) for k, v in notes.items() if "liveness" in k}
    assert probe.keys() == {"delay-seconds", "period-seconds", "timeout-seconds", "threshold"}
    assert probe["period-seconds"] * probe["threshold"] <= 30
    assert {"cpu", "memory"} <= container["resources"]["requests"].keys()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    service = of_kind(BASE, "Service")[deployment["metadata"]["name"]]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


@pytest.mark.parametrize("app_id", sorted(APPS))
def test_prometheus_finds_every_apps_metrics_port_and_every_sidecars(app_id):
    pod = DEPLOYMENTS[app_id]["spec"]["template"]
    notes = pod["metadata"]["annotations"]
    # daprd's: the Dapr operator annotates the <app id>-dapr Service for it (prometheus.io/*).
    assert notes["dapr.io/enable-metrics"] == "true" and int(notes["dapr.io/metrics-port"]) > 0
    metrics = (APPS[app_id].get("env") or {}).get("DAPRML_METRICS_PORT")
    if metrics is None:  # an app of the run file that serves no /metrics: nothing to scrape
        assert "prometheus.io/scrape" not in notes
        return
    # The app's: the same port as dapr.yaml's, never the app port, told to the app by its env.
    assert notes["prometheus.io/scrape"] == "true" and notes["prometheus.io/path"] == "/metrics"
    assert notes["prometheus.io/port"] == metrics != str(APPS[app_id]["appPort"])
    assert notes["dapr.io/metrics-port"] not in (metrics, str(APPS[app_id]["appPort"]))
    (container,) = pod["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["DAPRML_METRICS_PORT"] == metrics
    # The Service publishes the app port only: /metrics is not behind it, nor the Ingress.
    service = of_kind(BASE, "Service")[DEPLOYMENTS[app_id]["metadata"]["name"]]
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"]


def test_every_sidecar_exports_spans_over_otlp():
    for name, config in CONFIGURATIONS.items():
        otel = config["spec"]["tracing"]["otel"]
        assert otel["protocol"] == "grpc" and otel["endpointAddress"].endswith(":4317"), name


def test_every_secret_the_deployments_name_has_a_placeholder_and_no_placeholder_holds_a_value():
    placeholders = of_kind(PLACEHOLDERS, "Secret")
    named = {
        ref["secretKeyRef"]["name"]: ref["secretKeyRef"]["key"]
        for d in DEPLOYMENTS.values()
        for ref in (e.get("valueFrom", {}) for e in d["spec"]["template"]["spec"]["containers"][0]["env"])
        if "secretKeyRef" in ref
    }
    named |= {
        m["secretKeyRef"]["name"]: m["secretKeyRef"]["key"]
        for c in of_kind(OVERLAY, "Component").values()
        for m in c["spec"]["metadata"]
        if "secretKeyRef" in m
    }
    for name, key in named.items():
        assert key in placeholders[name]["stringData"], name
    for secret in placeholders.values():
        assert set(secret["stringData"].values()) == {"REPLACE-ME"}, secret["metadata"]["name"]
    # Kept out of what gets applied, so real Secrets are never overwritten by placeholders.
    assert not of_kind(BASE, "Secret") and not of_kind(OVERLAY, "Secret")


def test_access_control_denies_by_default_and_allows_exactly_the_expected_calls():
    allowed = set()
    for app_id, deployment in DEPLOYMENTS.items():
        config = CONFIGURATIONS[deployment["spec"]["template"]["metadata"]["annotations"]["dapr.io/config"]]["spec"]
        acl = config["accessControl"]
        assert acl["defaultAction"] == "deny"
        assert config["mtls"]["enabled"] is True  # callers are known by their mTLS identities
        assert config["tracing"]["samplingRate"]
        for policy in acl["policies"]:
            assert policy["namespace"] == NAMESPACE and policy["trustDomain"] == acl["trustDomain"]
            assert policy["defaultAction"] == "allow"
            allowed.add((policy["appId"], app_id))
    assert allowed == ALLOWED_CALLS
    assert {app for pair in allowed for app in pair} <= set(APPS)


def test_the_allowed_calls_are_those_the_local_profiles_access_rules_name():
    """dapr/access.yaml (called app -> its callers) writes the local profiles' Configurations;
    only the gateway's /readyz call to the notifier (the local status report's) is local only:
    the k8s Configuration of the notifier admits no caller."""
    access = yaml.safe_load((ROOT / "dapr/access.yaml").read_text())
    local = {(caller, called) for called, callers in access.items() for caller in callers}
    assert local - {("gateway", "notifier")} == ALLOWED_CALLS


def test_only_the_gateway_reads_secrets_and_only_its_own():
    for name, config in CONFIGURATIONS.items():
        scopes = {s["storeName"]: s for s in config["spec"]["secrets"]["scopes"]}
        assert scopes["kubernetes"]["defaultAccess"] == "deny", name
    gateway = CONFIGURATIONS[DEPLOYMENTS["gateway"]["spec"]["template"]["metadata"]["annotations"]["dapr.io/config"]]
    store = next(s for s in gateway["spec"]["secrets"]["scopes"] if s["storeName"] == "secretstore")
    assert store["defaultAccess"] == "deny" and "api-keys" in store["allowedSecrets"]


def test_the_overlays_components_have_the_local_profiles_names_and_scopes():
    components = of_kind(OVERLAY, "Component")
    assert components.keys() == LOCAL.keys()
    for name, component in components.items():
        assert sorted(component.get("scopes", [])) == sorted(LOCAL[name].get("scopes", [])), name
        assert set(component.get("scopes", [])) <= set(APPS), name


@pytest.mark.parametrize("name", sorted(of_kind(OVERLAY, "Component")))
def test_the_overlays_components_use_the_references_metadata_names_and_secret_refs(name):
    component = of_kind(OVERLAY, "Component")[name]
    spec = component["spec"]
    names = [m["name"] for m in spec["metadata"]]
    assert len(names) == len(set(names))
    assert set(names) <= REFERENCE[spec["type"]], set(names) - REFERENCE[spec["type"]]
    for item in spec["metadata"]:
        if item["name"] in CREDENTIALS:
            assert "value" not in item and set(item["secretKeyRef"]) == {"name", "key"}, item["name"]
    assert component["auth"] == {"secretStore": "kubernetes"}


def test_the_aws_profile_keeps_actor_state_and_a_queue_per_inference_pod():
    components = of_kind(OVERLAY, "Component")
    values = {name: {m["name"]: m.get("value") for m in c["spec"]["metadata"]} for name, c in components.items()}
    assert components["statestore"]["spec"]["type"] == "state.aws.dynamodb"
    assert values["statestore"]["actorStateStore"] == "true"  # training's workflows run on it
    assert components["pubsub"]["spec"]["type"] == components["pubsub-replicas"]["spec"]["type"] == "pubsub.aws.snssqs"
    assert "consumerID" not in values["pubsub"]  # the app id: replicas share one queue
    assert values["pubsub-replicas"]["consumerID"] == "{podName}"  # every inference pod hears every event
    assert components["secretstore"]["spec"]["type"] == "secretstores.aws.secretmanager"
    assert components["blobstore"]["spec"]["type"] == "bindings.aws.s3"


def test_inference_runs_several_replicas_scaled_by_an_hpa():
    deployment = DEPLOYMENTS["inference"]
    assert deployment["spec"]["replicas"] >= 2
    (hpa,) = of_kind(BASE, "HorizontalPodAutoscaler").values()
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]


def test_the_ingress_serves_the_gateway_from_the_root():
    (ingress,) = of_kind(BASE, "Ingress").values()
    (rule,) = ingress["spec"]["rules"]
    (path,) = rule["http"]["paths"]
    assert path["path"] == "/" and path["pathType"] == "Prefix"
    service = of_kind(BASE, "Service")[path["backend"]["service"]["name"]]
    assert service["spec"]["selector"] == DEPLOYMENTS["gateway"]["spec"]["selector"]["matchLabels"]
    assert path["backend"]["service"]["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}


def test_the_resiliency_policy_is_the_local_profiles():
    (resiliency,) = of_kind(BASE, "Resiliency").values()
    local = yaml.safe_load((ROOT / "components/local/resiliency.yaml").read_text())
    assert resiliency["spec"] == local["spec"]


def kustomize() -> list[str] | None:
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    for candidate in (shutil.which("kustomize"), str(Path.home() / "go/bin/kustomize")):
        if candidate and Path(candidate).exists():
            return [candidate, "build"]
    return None


@pytest.mark.parametrize("folder", ["base", "overlays/aws", "placeholder-secrets"])
def test_the_manifests_render(folder):
    command = kustomize()
    if command is None:
        pytest.skip("neither kubectl nor kustomize is installed")
    out = subprocess.run([*command, str(K8S / folder)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    rendered = [doc for doc in yaml.safe_load_all(out.stdout) if doc]
    for doc in rendered:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == NAMESPACE, (doc["kind"], doc["metadata"]["name"])
    if folder == "overlays/aws":
        images = {
            c["image"]
            for d in of_kind(rendered, "Deployment").values()
            for c in d["spec"]["template"]["spec"]["containers"]
        }
        assert all(":" in image and not image.endswith(":latest") for image in images), images


def test_no_configuration_hot_reloads_components():
    # daprd 1.18 reloads a changed component by default; a reload of the actor state store aborts.
    for name, config in {**CONFIGURATIONS, "local": yaml.safe_load((ROOT / "dapr/config.yaml").read_text())}.items():
        assert {"name": "HotReload", "enabled": False} in config["spec"].get("features", []), name
