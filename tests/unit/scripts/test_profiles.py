"""Component profiles (components/<profile>, chosen by DAPRML_PROFILE): the same component names,
scopes and resiliency policy everywhere; every metadata field named as components-contrib's
metadata.yaml of the version daprd is built with names it (the cloud profiles cannot be loaded
here, so this is their check); credentials only by secretKeyRef; and no service code that knows
which profile or component type runs. (The servers infra starts for each runnable profile:
tests/unit/scripts/infra/.)"""

import ast
import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from scripts import credentials, profiles
from scripts.proc import ROOT, SetupError

LOCAL = {c["metadata"]["name"]: c for c in profiles.components("local")}
RUNNABLE = ["local", "nats-sqlite", "postgres-rabbitmq"]
CLOUD = ["aws", "azure", "gcp"]


def contrib() -> Path | None:
    """components-contrib's module at the version the runtime module requires."""
    version = re.search(r"github.com/dapr/components-contrib (v\S+)", (ROOT / "dapr/runtime/go.mod").read_text())
    cache = Path(os.environ.get("GOMODCACHE", Path.home() / "go/pkg/mod"))
    folder = cache / f"github.com/dapr/components-contrib@{version.group(1)}" if version else None
    return folder if folder and folder.is_dir() else None


# Authentication fields shared by many components, which their metadata.yaml only name as a
# built-in profile (the definitions live in components-contrib's build tools, not in the module):
# as the Dapr component reference spells them (docs.dapr.io: authenticating-aws,
# authenticating-azure, setup-gcp-pubsub).
BUILTIN = {
    "aws": {"region", "endpoint", "accessKey", "secretKey", "sessionToken", "assumeRoleArn", "sessionName"},
    "azuread": {
        "azureTenantId",
        "azureClientId",
        "azureClientSecret",
        "azureCertificate",
        "azureCertificateFile",
        "azureCertificatePassword",
        "azureEnvironment",
    },
    "gcp": {
        "type",
        "projectId",
        "identityProjectId",
        "privateKeyId",
        "privateKey",
        "clientEmail",
        "clientId",
        "authUri",
        "tokenUri",
        "authProviderX509CertUrl",
        "clientX509CertUrl",
    },
}
# Set by Dapr itself for any state store or pub/sub, not by the component.
DAPR_FIELDS = {"state": {"actorStateStore", "keyPrefix"}, "pubsub": {"consumerID"}}


def schema(component_type: str, version: str) -> dict:
    folder = contrib()
    if folder is None:
        pytest.skip("components-contrib's module is not in the Go module cache (scripts/install-dapr fetches it)")
    base = folder.joinpath(*component_type.split("."))
    path = next(p for p in (base / version / "metadata.yaml", base / "metadata.yaml") if p.exists())
    return yaml.safe_load(path.read_text())


def known_fields(component_type: str, version: str) -> tuple[set[str], set[str], set[str]]:
    """Every field name the schema allows, the sensitive ones, and the required ones."""
    doc = schema(component_type, version)
    fields = {m["name"]: m for m in doc.get("metadata") or []}
    for profile in doc.get("authenticationProfiles") or []:
        fields |= {m["name"]: m for m in profile.get("metadata") or []}
    names = set(fields)
    for builtin in doc.get("builtinAuthenticationProfiles") or []:
        names |= BUILTIN[builtin["name"]] | {m["name"] for m in builtin.get("metadata") or []}
    names |= DAPR_FIELDS.get(component_type.split(".")[0], set())
    sensitive = {n for n, m in fields.items() if m.get("sensitive")}
    required = {m["name"] for m in doc.get("metadata") or [] if m.get("required")}
    return names, sensitive, required


def test_the_profiles_are_the_three_runnable_and_three_cloud_ones():
    assert profiles.names() == sorted(RUNNABLE + CLOUD)
    assert profiles.runnable() == RUNNABLE
    assert profiles.current() == os.environ.get(profiles.ENV, "local")
    with pytest.raises(SetupError, match="no such profile"):
        profiles.current("redis-only")


@pytest.mark.parametrize("profile", RUNNABLE + CLOUD)
def test_every_profile_has_the_local_profiles_components_scopes_and_resiliency(profile):
    components = {c["metadata"]["name"]: c for c in profiles.components(profile)}
    needed = LOCAL.keys() - {"componentsecrets"}
    assert needed <= components.keys() <= LOCAL.keys(), components.keys() ^ LOCAL.keys()
    for name, component in components.items():
        if name != "componentsecrets":
            assert sorted(component.get("scopes", [])) == sorted(LOCAL[name].get("scopes", [])), name
    assert profiles.metadata_values(components["statestore"])["actorStateStore"] == "true"  # workflows
    (resiliency,) = [d for d in profiles.documents(profile) if d["kind"] == "Resiliency"]
    local = yaml.safe_load((ROOT / "components/local/resiliency.yaml").read_text())
    assert resiliency == local


@pytest.mark.parametrize("profile", RUNNABLE + CLOUD)
def test_every_field_is_named_as_in_the_components_metadata_schema_and_secrets_come_by_reference(profile):
    for component in profiles.components(profile):
        spec, name = component["spec"], component["metadata"]["name"]
        names, sensitive, required = known_fields(spec["type"], spec["version"])
        given = [m["name"] for m in spec.get("metadata", [])]
        assert len(given) == len(set(given)), name
        assert set(given) <= names, f"{profile}/{name} ({spec['type']}): {set(given) - names} not in its schema"
        if profile in CLOUD:  # (locally, bindings.localstorage's "required" fileName is per request)
            assert required <= set(given), f"{profile}/{name}: {required - set(given)} required"
        for item in spec.get("metadata", []):
            if item["name"] in sensitive:
                assert "value" not in item and set(item["secretKeyRef"]) == {"name", "key"}, f"{name}.{item['name']}"
        if any("secretKeyRef" in m for m in spec.get("metadata", [])):
            store = component["auth"]["secretStore"]
            assert store == ("kubernetes" if profile in CLOUD else "componentsecrets"), name


@pytest.mark.parametrize("profile", RUNNABLE)
def test_a_runnable_profiles_secret_references_name_the_keys_setup_makes(profile):
    keys = set(json.loads(credentials.COMPONENT_SECRETS_EXAMPLE.read_text()))
    for component in profiles.components(profile):
        for item in component["spec"].get("metadata", []):
            if "secretKeyRef" in item:
                assert item["secretKeyRef"]["name"] in keys, item
    if "componentsecrets" in {c["metadata"]["name"] for c in profiles.components(profile)}:
        config = yaml.safe_load((ROOT / "dapr/config.yaml").read_text())
        assert {"storeName": "componentsecrets", "defaultAccess": "deny"} in config["spec"]["secrets"]["scopes"]


def test_the_aws_profile_is_the_kubernetes_overlays_components():
    overlay = ROOT / "deploy/k8s/overlays/aws/components"
    for path in overlay.glob("*.yaml"):
        assert (ROOT / "components/aws" / path.name).resolve() == path.resolve()
    kustomization = yaml.safe_load((overlay.parent / "kustomization.yaml").read_text())
    assert {Path(r).name for r in kustomization["resources"] if r.startswith("components/")} == {
        p.name for p in overlay.glob("*.yaml")
    }


def test_each_profile_gets_a_queue_per_app_and_one_per_replica():
    values = {p: {c["metadata"]["name"]: profiles.metadata_values(c) for c in profiles.components(p)} for p in RUNNABLE}
    rabbit = values["postgres-rabbitmq"]
    assert "consumerID" not in rabbit["pubsub"] and rabbit["pubsub"]["durable"] == "true"
    assert (
        rabbit["pubsub-replicas"]["consumerID"] == "{uuid}" and rabbit["pubsub-replicas"]["deletedWhenUnused"] == "true"
    )
    nats = values["nats-sqlite"]
    assert nats["pubsub"]["durableName"] == nats["pubsub"]["queueGroupName"] == "{appID}"
    assert "durableName" not in nats["pubsub-replicas"] and "queueGroupName" not in nats["pubsub-replicas"]


def test_component_secrets_are_made_once_private_and_copied_into_a_stack(tmp_path):
    first = credentials.component_secrets(tmp_path)
    assert first.keys() == json.loads(credentials.COMPONENT_SECRETS_EXAMPLE.read_text()).keys()
    assert credentials.component_secrets(tmp_path) == first
    copy = tmp_path / ".data" / credentials.COMPONENT_SECRETS
    assert json.loads(copy.read_text()) == first and copy.stat().st_mode & 0o777 == 0o600
    assert (ROOT / ".data" / credentials.COMPONENT_SECRETS).stat().st_mode & 0o777 == 0o600
    ignored = subprocess.run(["git", "check-ignore", "-q", ".data/component-secrets.json"], cwd=ROOT)
    assert ignored.returncode == 0


def _string_constants(path: Path) -> list[str]:
    return [
        n.value
        for n in ast.walk(ast.parse(path.read_text()))
        if isinstance(n, ast.Constant) and isinstance(n.value, str)
    ]


def component_type_pattern() -> re.Pattern:
    """`<kind>.<name>` for every component the runtime has (components-contrib's folders) and
    every type a profile uses: state.redis, pubsub.jetstream, bindings.localstorage, ..."""
    kinds = ("state", "pubsub", "bindings", "secretstores", "configuration", "lock", "crypto", "conversation")
    names = {c["spec"]["type"].split(".", 1)[1].split(".")[0] for p in profiles.names() for c in profiles.components(p)}
    folder = contrib()
    if folder:
        names |= {d.name for kind in kinds if (folder / kind).is_dir() for d in (folder / kind).iterdir() if d.is_dir()}
    names -= {"utils", "internal", "common"}
    # Not inside a dotted module path (cloudevents.core.bindings.http).
    return re.compile(rf"(?<![\w.])({'|'.join(kinds)})\.({'|'.join(sorted(map(re.escape, names)))})\b")


def test_no_service_names_a_component_type_or_a_profile():
    pattern = component_type_pattern()
    offenders = []
    for path in sorted((ROOT / "services").rglob("*.py")):
        text = path.read_text()
        offenders += [f"{path.relative_to(ROOT)}: {m.group(0)}" for m in pattern.finditer(text)]
        for value in _string_constants(path):
            named = {p for p in profiles.names() if value == p or f"components/{p}" in value}
            offenders += [f"{path.relative_to(ROOT)}: profile {p!r}" for p in named]
    assert offenders == []


def test_the_check_would_find_a_component_type_or_a_profile():
    pattern = component_type_pattern()
    assert pattern.search('kind = "state.redis"') and pattern.search("# via pubsub.azure.servicebus.topics")
    assert not pattern.search("await self.state.save(key)") and not pattern.search("ports.pubsub.publish(e)")
    assert "nats-sqlite" in _string_constants_of('PROFILE = "nats-sqlite"')


def _string_constants_of(source: str) -> list[str]:
    return [n.value for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def test_the_example_component_secrets_file_holds_no_real_value():
    example = json.loads(credentials.COMPONENT_SECRETS_EXAMPLE.read_text())
    assert set(example.values()) == {"made-by-setup"}
