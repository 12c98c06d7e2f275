#!/usr/bin/env python3
"""Checks of deploy/ that a schema cannot make; run by deploy/validate.sh.

  check.py k8s OVERLAY RENDERED.yaml   the rendered manifests of one overlay (base, dev, production)
  check.py dockerfile                  deploy/Dockerfile against README.md, .dockerignore
  check.py compose                     deploy/compose.yaml (after dclint's schema check)
  check.py otel                        deploy/otel-collector.yaml

The schema check (kubernetes-validate) says each object is well formed; this says they fit
together: selectors select pods, references name objects that exist, probes and grace periods
agree with the binaries' settings, every container is locked down, and the image runs the
binaries the Dockerfile builds. Prints one line per problem and exits 1 if there is any.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
README = ROOT / "README.md"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = ROOT / "deploy" / "compose.yaml"
OTEL = ROOT / "deploy" / "otel-collector.yaml"

SERVICES = {
    "ingestion": "zonerank.v1.IngestionService",
    "metrics": "zonerank.v1.MetricsService",
    "ranking": "zonerank.v1.RankingService",
}
GRPC_PORT = 50051
# production's plaintext health port (ZONERANK_HEALTH_LISTEN): the probes ask it, not the TLS port.
HEALTH_PORT = 8081
# The Secret with the pods' TLS key pair and CA (cert-manager's keys), mounted here.
TLS_SECRET = "zonerank-tls"
TLS_KEYS = {"tls.crt", "tls.key", "ca.crt"}
RUNTIME_UID = 65532
NAMESPACES = {"dev": "zonerank-dev", "production": "zonerank"}
# minReplicas, maxReplicas of every HPA per overlay (base: any sane pair).
HPA_BOUNDS = {"dev": (1, 2), "production": (3, 20)}
# Egress the zonerank pods may have: DNS, PostgreSQL, Redis, OTLP, and gRPC between services.
ALLOWED_EGRESS_PORTS = {53, 5432, 6379, 4317, GRPC_PORT}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PriorityClass"}
LABELS = ("app.kubernetes.io/name", "app.kubernetes.io/part-of", "app.kubernetes.io/component")

problems: list[str] = []


def problem(where: str, message: str) -> None:
    problems.append(f"{where}: {message}")


def finish(what: str) -> int:
    for line in problems:
        print(f"  FAIL {line}")
    if problems:
        print(f"{what}: {len(problems)} problem(s)")
        return 1
    print(f"{what}: ok")
    return 0


# --- Dockerfile -------------------------------------------------------------------------------


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out, current = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if current and line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        word, _, rest = current.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        current = ""
    return out


def cargo_build_command(instructions: list[tuple[str, str]]) -> str | None:
    for word, rest in instructions:
        if word == "RUN" and "cargo build" in rest:
            command = rest[rest.index("cargo build") :].split("&&")[0]
            return " ".join(command.split())
    return None


def built_binaries() -> set[str]:
    """The packages (= binaries) the Dockerfile's cargo build builds."""
    command = cargo_build_command(dockerfile_instructions(DOCKERFILE.read_text())) or ""
    words = command.split()
    return {words[i + 1] for i, w in enumerate(words[:-1]) if w in ("-p", "--package")}


def check_dockerfile() -> int:
    instructions = dockerfile_instructions(DOCKERFILE.read_text())
    where = "deploy/Dockerfile"
    command = cargo_build_command(instructions)
    if command is None:
        problem(where, "no RUN with `cargo build`")
        return finish("dockerfile")
    if not command.startswith("cargo build --release") or "--locked" not in command.split():
        problem(where, f"the build is not a locked release build: {command}")

    # The README's build command must be the Dockerfile's, word for word.
    readme = README.read_text().replace("\\\n", " ")
    readme_commands = {
        " ".join(line[line.index("cargo build") :].split()).rstrip("`")
        for line in readme.splitlines()
        if "cargo build --release" in line
    }
    if command not in readme_commands:
        found = "; ".join(sorted(readme_commands)) or "none"
        problem(
            "README.md",
            f"must show the Dockerfile's build command `{command}` (README has: {found})",
        )

    # Every binary built is copied into the runtime image, and nothing else.
    binaries = built_binaries()
    copied = set()
    for word, rest in instructions:
        if word == "RUN" and "cargo build" in rest:
            copied = set(re.findall(r"target/release/([A-Za-z0-9_-]+)", rest))
    if copied != binaries:
        problem(where, f"builds {sorted(binaries)} but copies {sorted(copied)} out of target/")
    if binaries != {"zonerank", "zonerank-ingestion", "zonerank-metrics", "zonerank-ranking"}:
        problem(where, f"must build the CLI and the three services, builds {sorted(binaries)}")

    # The builder's Rust is at least the workspace's rust-version.
    args = {}
    for word, rest in instructions:
        if word == "ARG" and "=" in rest:
            key, _, value = rest.partition("=")
            args[key.strip()] = value.strip()
    cargo_toml = (ROOT / "Cargo.toml").read_text()
    needed = re.search(r'rust-version\s*=\s*"([0-9.]+)"', cargo_toml)
    froms = [rest.split()[0] for word, rest in instructions if word == "FROM"]
    rust = [f for f in froms if f.startswith("rust:")]
    if not rust:
        problem(where, "the builder is not a rust: image")
    elif needed:
        tag = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), "?"), rust[0].split(":", 1)[1])
        have = re.match(r"(\d+)\.(\d+)", tag)
        want = tuple(int(x) for x in needed.group(1).split(".")[:2])
        if not have or tuple(int(x) for x in have.groups()) < want:
            problem(where, f"builder {rust[0]} ({tag}) is older than rust-version {needed.group(1)}")

    # The runtime stage: non-root numeric user, the port, the container settings.
    stages = [i for i, (word, _) in enumerate(instructions) if word == "FROM"]
    runtime = instructions[stages[-1] :]
    users = [rest for word, rest in runtime if word == "USER"]
    if not users or not re.fullmatch(r"[1-9][0-9]*(:[0-9]+)?", users[-1]):
        problem(where, f"the runtime stage needs a numeric non-root USER, has {users}")
    elif int(users[-1].split(":")[0]) != RUNTIME_UID:
        problem(where, f"runtime USER {users[-1]} is not {RUNTIME_UID} (the manifests' runAsUser)")
    if not any(word == "EXPOSE" and str(GRPC_PORT) in rest.split() for word, rest in runtime):
        problem(where, f"the runtime stage does not EXPOSE {GRPC_PORT}")
    env = " ".join(rest for word, rest in runtime if word == "ENV")
    for setting in (f"ZONERANK_LISTEN=0.0.0.0:{GRPC_PORT}", "ZONERANK_LOG_FORMAT=json"):
        if setting not in env.split():
            problem(where, f"the runtime stage does not set ENV {setting}")
    copies = [rest for word, rest in runtime if word == "COPY"]
    if not any("/usr/local/bin" in c for c in copies):
        problem(where, "the runtime stage does not put the binaries in /usr/local/bin")
    cmd = [rest for word, rest in runtime if word in ("CMD", "ENTRYPOINT")]
    if not cmd or not all(c.startswith("[") for c in cmd):
        problem(where, "the runtime stage needs an exec-form CMD or ENTRYPOINT")

    # .dockerignore keeps the build context small.
    patterns = {
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for needed_pattern in ("target", ".git", "*.db"):
        if needed_pattern not in patterns:
            problem(".dockerignore", f"does not exclude {needed_pattern}")
    return finish("dockerfile")


# --- Kubernetes -------------------------------------------------------------------------------


def selects(selector: dict | None, labels: dict) -> bool:
    """Whether a LabelSelector (matchLabels, matchExpressions) selects these labels."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def service_selects(service: dict, labels: dict) -> bool:
    """Whether a Service's selector (a plain map; empty selects nothing here) selects these labels."""
    selector = service["spec"].get("selector") or {}
    return bool(selector) and selects({"matchLabels": selector}, labels)


def quantity(value) -> float:
    """A Kubernetes quantity as a float (cpu in cores, memory in bytes)."""
    text = str(value)
    suffixes = {
        "m": 1e-3,
        "k": 1e3,
        "M": 1e6,
        "G": 1e9,
        "T": 1e12,
        "Ki": 2**10,
        "Mi": 2**20,
        "Gi": 2**30,
        "Ti": 2**40,
    }
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", text)
    if not match or match.group(2) not in {"", *suffixes}:
        raise ValueError(f"not a quantity: {text}")
    return float(match.group(1)) * suffixes.get(match.group(2), 1)


def name_of(obj: dict) -> str:
    return f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"


def check_container(where: str, container: dict, pod_security: dict, zonerank_image: bool) -> None:
    where = f"{where} container {container.get('name')}"
    resources = container.get("resources") or {}
    for kind in ("requests", "limits"):
        for resource in ("cpu", "memory"):
            if resource not in (resources.get(kind) or {}):
                problem(where, f"no resources.{kind}.{resource}")
    for resource in ("cpu", "memory"):
        try:
            request = quantity(resources["requests"][resource])
            limit = quantity(resources["limits"][resource])
            if request > limit:
                problem(where, f"{resource} request {request} is above its limit {limit}")
        except (KeyError, TypeError, ValueError):
            pass

    security = container.get("securityContext") or {}

    def setting(key):
        return security.get(key, pod_security.get(key))

    if setting("runAsNonRoot") is not True:
        problem(where, "runAsNonRoot is not true")
    uid = setting("runAsUser")
    if not isinstance(uid, int) or uid == 0:
        problem(where, f"runAsUser must be a non-zero number, is {uid}")
    elif zonerank_image and uid != RUNTIME_UID:
        problem(where, f"runAsUser {uid} is not the image's user {RUNTIME_UID}")
    if security.get("allowPrivilegeEscalation") is not False:
        problem(where, "allowPrivilegeEscalation is not false")
    if security.get("readOnlyRootFilesystem") is not True:
        problem(where, "readOnlyRootFilesystem is not true")
    if "ALL" not in ((security.get("capabilities") or {}).get("drop") or []):
        problem(where, "capabilities.drop does not include ALL")
    if (setting("seccompProfile") or {}).get("type") != "RuntimeDefault":
        problem(where, "seccompProfile is not RuntimeDefault")

    image = container.get("image", "")
    last = image.rsplit("/", 1)[-1]
    if "@sha256:" not in image and ":" not in last:
        problem(where, f"image {image} has no tag")
    elif last.endswith(":latest"):
        problem(where, f"image {image} uses :latest")


def mounted_from_secret(spec: dict, container: dict, path: str, secret: str) -> bool:
    """Whether `path` lies on a read-only mount of a volume of Secret `secret`."""
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    for mount in container.get("volumeMounts") or []:
        root = mount.get("mountPath", "").rstrip("/") + "/"
        volume = volumes.get(mount.get("name"), {})
        if path.startswith(root) and (volume.get("secret") or {}).get("secretName") == secret:
            items = {i["path"]: i["key"] for i in (volume["secret"].get("items") or [])}
            name = path[len(root):]
            key = items.get(name, name if not items else None)
            return mount.get("readOnly") is True and key in TLS_KEYS
    return False


def check_pod_tls(where: str, component: str, spec: dict, container: dict, env: dict) -> None:
    """Production: TLS in the pod from the Secret, the plaintext health port, mTLS on the
    ranking → metrics hop."""
    needed = ["ZONERANK_TLS_CERT", "ZONERANK_TLS_KEY"]
    if component == "metrics":
        needed.append("ZONERANK_TLS_CLIENT_CA")
    if component == "ranking":
        needed += ["ZONERANK_CA_CERT", "ZONERANK_CLIENT_CERT", "ZONERANK_CLIENT_KEY"]
    for key in needed:
        path = env.get(key) or ""
        if not path:
            problem(where, f"no {key}: production serves TLS in the pod")
        elif not mounted_from_secret(spec, container, path, TLS_SECRET):
            problem(where, f"{key} {path} is not on a read-only mount of Secret {TLS_SECRET}")
    if component != "metrics" and "ZONERANK_TLS_CLIENT_CA" in env:
        problem(where, "only the metrics service requires client certificates")
    if env.get("ZONERANK_HEALTH_LISTEN") != f"0.0.0.0:{HEALTH_PORT}":
        problem(where, f"ZONERANK_HEALTH_LISTEN must be 0.0.0.0:{HEALTH_PORT} (the probes' port)")
    if not any(
        p.get("containerPort") == HEALTH_PORT and p.get("name") == "health"
        for p in container.get("ports", [])
    ):
        problem(where, f"no container port {HEALTH_PORT} named health")


def check_k8s(overlay: str, rendered: Path) -> int:
    docs = [d for d in yaml.safe_load_all(rendered.read_text()) if d]
    by_kind: dict[str, dict[str, dict]] = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
    workloads = {**by_kind.get("Deployment", {}), **by_kind.get("Job", {})}
    pod_labels = {
        name: (w["spec"]["template"]["metadata"].get("labels") or {}) for name, w in workloads.items()
    }
    configmaps = by_kind.get("ConfigMap", {})
    secrets = by_kind.get("Secret", {})
    expected_ns = NAMESPACES.get(overlay)
    external_secrets = set()

    # Every object: the recommended labels, and the overlay's namespace.
    for doc in docs:
        where = f"{overlay} {name_of(doc)}"
        labels = doc["metadata"].get("labels") or {}
        for label in LABELS:
            if label not in labels:
                problem(where, f"no label {label}")
        namespace = doc["metadata"].get("namespace")
        if doc["kind"] in CLUSTER_SCOPED:
            if doc["kind"] == "Namespace" and expected_ns and doc["metadata"]["name"] != expected_ns:
                problem(where, f"the overlay's namespace is {expected_ns}")
        elif expected_ns and namespace != expected_ns:
            problem(where, f"namespace {namespace}, expected {expected_ns}")

    # The zonerank config the pods read.
    config = {}
    for cm in configmaps.values():
        if cm["metadata"]["labels"].get("app.kubernetes.io/name") == "zonerank-config":
            config = cm.get("data") or {}
    if not config:
        problem(overlay, "no zonerank-config ConfigMap")
    if config.get("ZONERANK_LISTEN") != f"0.0.0.0:{GRPC_PORT}":
        problem(f"{overlay} zonerank-config", f"ZONERANK_LISTEN must be 0.0.0.0:{GRPC_PORT}")
    if config.get("ZONERANK_LOG_FORMAT") != "json":
        problem(f"{overlay} zonerank-config", "ZONERANK_LOG_FORMAT must be json")
    grace = int(config.get("ZONERANK_SHUTDOWN_GRACE_SECS", 20))
    if overlay == "production":
        if config.get("OTEL_EXPORTER_OTLP_ENDPOINT") != "http://otel-collector.observability:4317":
            problem(f"{overlay} zonerank-config", "OTEL_EXPORTER_OTLP_ENDPOINT is not the collector")
    if overlay == "dev" and "debug" not in config.get("RUST_LOG", ""):
        problem(f"{overlay} zonerank-config", "RUST_LOG is not at debug")
    # Secure by default: production verifies callers' tokens and never runs open; dev says
    # explicitly that it runs open (a server on 0.0.0.0 without auth refuses to start).
    jwks = config.get("ZONERANK_AUTH_JWKS", "")
    if overlay == "production":
        for key in ("ZONERANK_AUTH_JWKS", "ZONERANK_AUTH_ISSUER", "ZONERANK_AUTH_AUDIENCE"):
            if not config.get(key):
                problem(f"{overlay} zonerank-config", f"{key} must be set: production authenticates callers")
        if "ZONERANK_INSECURE_NO_AUTH" in config:
            problem(f"{overlay} zonerank-config", "ZONERANK_INSECURE_NO_AUTH must not be set in production")
    if overlay == "dev":
        if config.get("ZONERANK_INSECURE_NO_AUTH") != "true" or jwks:
            problem(f"{overlay} zonerank-config", "dev runs open explicitly: ZONERANK_INSECURE_NO_AUTH=true, no JWKS")

    binaries = built_binaries()
    for name, workload in workloads.items():
        where = f"{overlay} {workload['kind']}/{name}"
        spec = workload["spec"]["template"]["spec"]
        labels = pod_labels[name]
        component = labels.get("app.kubernetes.io/component")
        pod_security = spec.get("securityContext") or {}
        if pod_security.get("runAsNonRoot") is not True:
            problem(where, "pod securityContext.runAsNonRoot is not true")
        if spec.get("automountServiceAccountToken") is not False:
            problem(where, "automountServiceAccountToken is not false")
        containers = spec.get("containers", []) + spec.get("initContainers", [])
        for container in containers:
            zonerank_image = labels.get("app.kubernetes.io/part-of") == "zonerank"
            check_container(where, container, pod_security, zonerank_image)
            if zonerank_image and jwks and workload["kind"] == "Deployment":
                mounted = [m.get("mountPath", "") for m in container.get("volumeMounts", [])]
                if not any(jwks.startswith(path.rstrip("/") + "/") for path in mounted):
                    problem(where, f"ZONERANK_AUTH_JWKS {jwks} is not on a mounted volume")
            if zonerank_image:
                image = container.get("image", "")
                if overlay == "production" and ("/" not in image or image.endswith(":dev")):
                    problem(where, f"production image {image} is not a pinned registry image")
                command = container.get("command") or []
                binary = command[0].rsplit("/", 1)[-1] if command else None
                if binary not in binaries:
                    problem(where, f"command {command} runs no binary the image has {sorted(binaries)}")
            # References to ConfigMaps and Secrets resolve.
            for source in container.get("envFrom") or []:
                ref = source.get("configMapRef") or source.get("secretRef")
                pool = configmaps if "configMapRef" in source else secrets
                if ref and ref["name"] not in pool:
                    problem(where, f"envFrom names {ref['name']}, which is not rendered")
            for var in container.get("env") or []:
                ref = (var.get("valueFrom") or {}).get("secretKeyRef")
                if ref:
                    secret = secrets.get(ref["name"])
                    if secret is None:
                        if overlay == "dev":
                            problem(where, f"{var['name']} names Secret {ref['name']}, not rendered")
                        external_secrets.add(ref["name"])
                    elif ref["key"] not in (secret.get("data") or {}):
                        problem(where, f"Secret {ref['name']} has no key {ref['key']}")
                ref = (var.get("valueFrom") or {}).get("configMapKeyRef")
                if ref and ref["name"] not in configmaps:
                    problem(where, f"{var['name']} names ConfigMap {ref['name']}, not rendered")

        if workload["kind"] == "Job":
            job = workload["spec"]
            for key in ("ttlSecondsAfterFinished", "backoffLimit"):
                if key not in job:
                    problem(where, f"no {key}")
            if job.get("parallelism", 1) != 1:
                problem(where, "migrations must not run in parallel")
            if component == "migration":
                command = spec["containers"][0].get("command", [])
                if [c.rsplit("/", 1)[-1] for c in command] != ["zonerank", "migrate"]:
                    problem(where, f"the migration Job runs {command}, not zonerank migrate")
            continue
        if component not in SERVICES:
            continue

        # The three services.
        if "replicas" in workload["spec"]:
            problem(where, "sets spec.replicas; the HorizontalPodAutoscaler owns the count")
        container = spec["containers"][0]
        if not any(
            p.get("containerPort") == GRPC_PORT and p.get("name") == "grpc"
            for p in container.get("ports", [])
        ):
            problem(where, f"no container port {GRPC_PORT} named grpc")
        env_names = {v["name"] for v in container.get("env", [])}
        for needed in ("DATABASE_URL", "REDIS_URL"):
            if needed not in env_names:
                problem(where, f"no {needed}")
        env = {v["name"]: v.get("value") for v in container.get("env", [])}
        # Production serves TLS in the pod: the probes (no TLS, no token) ask the plaintext
        # health port; elsewhere the main port.
        probe_port = GRPC_PORT
        if overlay == "production":
            probe_port = HEALTH_PORT
            check_pod_tls(where, component, spec, container, env)
        for probe_name in ("startupProbe", "readinessProbe", "livenessProbe"):
            grpc = (container.get(probe_name) or {}).get("grpc")
            if not grpc or grpc.get("port") != probe_port:
                problem(where, f"{probe_name} is not a gRPC probe on {probe_port}")
        readiness = ((container.get("readinessProbe") or {}).get("grpc") or {}).get("service")
        if readiness != SERVICES[component]:
            problem(where, f"readinessProbe asks for {readiness!r}, not {SERVICES[component]}")
        sleep = ((container.get("lifecycle") or {}).get("preStop") or {}).get("sleep") or {}
        pre_stop = sleep.get("seconds", 0)
        if pre_stop <= 0:
            problem(where, "no preStop sleep (endpoints must drop the pod before it drains)")
        termination = spec.get("terminationGracePeriodSeconds", 30)
        if termination <= pre_stop + grace:
            problem(
                where,
                f"terminationGracePeriodSeconds {termination} leaves no margin over preStop "
                f"{pre_stop} s + ZONERANK_SHUTDOWN_GRACE_SECS {grace} s",
            )
        if overlay == "production":
            keys = {c.get("topologyKey") for c in spec.get("topologySpreadConstraints") or []}
            for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname"):
                if key not in keys:
                    problem(where, f"no topologySpreadConstraint over {key}")

        # Something scales it, protects it from disruption, and serves it.
        if not any(
            h["spec"]["scaleTargetRef"]["name"] == name
            for h in by_kind.get("HorizontalPodAutoscaler", {}).values()
        ):
            problem(where, "no HorizontalPodAutoscaler")
        if not any(
            selects(p["spec"].get("selector"), labels)
            for p in by_kind.get("PodDisruptionBudget", {}).values()
        ):
            problem(where, "no PodDisruptionBudget")
        services = [
            s
            for s in by_kind.get("Service", {}).values()
            if s["spec"].get("clusterIP") != "None" and service_selects(s, labels)
        ]
        if not services:
            problem(where, "no ClusterIP Service selects it")
        for service in services:
            ports = service["spec"]["ports"]
            if not any(
                p.get("name") == "grpc" and p.get("port") == GRPC_PORT and p.get("appProtocol") == "grpc"
                for p in ports
            ):
                problem(f"{overlay} {name_of(service)}", "no port 50051 named grpc with appProtocol grpc")

        # ranking reaches metrics through a headless Service that selects the metrics pods.
        if component == "ranking":
            address = env.get("ZONERANK_METRICS_ADDR") or ""
            scheme = "https" if overlay == "production" else "http"
            match = re.fullmatch(scheme + r"://([a-z0-9-]+):(\d+)", address)
            headless = by_kind.get("Service", {}).get(match.group(1)) if match else None
            if not headless:
                problem(where, f"ZONERANK_METRICS_ADDR {address!r} names no Service")
            else:
                if headless["spec"].get("clusterIP") != "None":
                    problem(where, f"ZONERANK_METRICS_ADDR {address} is not a headless Service")
                metrics_pods = [
                    n for n, pl in pod_labels.items() if pl.get("app.kubernetes.io/component") == "metrics"
                ]
                if not any(service_selects(headless, pod_labels[n]) for n in metrics_pods):
                    problem(where, f"{match.group(1)} does not select the metrics pods")
                if int(match.group(2)) not in [p["port"] for p in headless["spec"]["ports"]]:
                    problem(where, f"{match.group(1)} has no port {match.group(2)}")

    if overlay == "production" and external_secrets != {"zonerank-secrets"}:
        problem(overlay, f"expected only zonerank-secrets to come from outside, got {external_secrets}")

    # HPAs, PDBs and Services point at something.
    for hpa in by_kind.get("HorizontalPodAutoscaler", {}).values():
        where = f"{overlay} {name_of(hpa)}"
        target = hpa["spec"]["scaleTargetRef"]
        if target["name"] not in by_kind.get(target["kind"], {}):
            problem(where, f"scales {target['kind']}/{target['name']}, which is not rendered")
        low, high = hpa["spec"].get("minReplicas", 1), hpa["spec"]["maxReplicas"]
        if low > high:
            problem(where, f"minReplicas {low} > maxReplicas {high}")
        if overlay in HPA_BOUNDS and (low, high) != HPA_BOUNDS[overlay]:
            problem(where, f"replicas {low}..{high}, expected {HPA_BOUNDS[overlay]}")
        if not any(
            m.get("type") == "Resource" and m["resource"]["name"] == "cpu"
            for m in hpa["spec"].get("metrics", [])
        ):
            problem(where, "does not scale on CPU")
    for pdb in by_kind.get("PodDisruptionBudget", {}).values():
        if not any(selects(pdb["spec"].get("selector"), pl) for pl in pod_labels.values()):
            problem(f"{overlay} {name_of(pdb)}", "selects no pods")
    for service in by_kind.get("Service", {}).values():
        where = f"{overlay} {name_of(service)}"
        targets = [n for n, pl in pod_labels.items() if service_selects(service, pl)]
        if not targets:
            problem(where, "selects no pods")
        for port in service["spec"]["ports"]:
            target_port = port.get("targetPort", port["port"])
            for n in targets:
                container_ports = [
                    p
                    for c in workloads[n]["spec"]["template"]["spec"]["containers"]
                    for p in c.get("ports", [])
                ]
                if isinstance(target_port, str):
                    ok = any(p.get("name") == target_port for p in container_ports)
                else:
                    ok = any(p.get("containerPort") == target_port for p in container_ports)
                if not ok:
                    problem(where, f"targetPort {target_port} is not a port of {n}")

    # NetworkPolicies: a default deny, every policy selects pods, egress only where intended.
    policies = by_kind.get("NetworkPolicy", {})
    if not any(
        p["spec"].get("podSelector") == {}
        and p["spec"].get("policyTypes") == ["Ingress"]
        and not p["spec"].get("ingress")
        for p in policies.values()
    ):
        problem(overlay, "no default-deny ingress NetworkPolicy")
    for policy in policies.values():
        where = f"{overlay} {name_of(policy)}"
        selector = policy["spec"].get("podSelector")
        if selector != {} and not any(selects(selector, pl) for pl in pod_labels.values()):
            problem(where, "selects no pods")
        for rule in policy["spec"].get("egress") or []:
            for port in rule.get("ports") or []:
                if port.get("port") not in ALLOWED_EGRESS_PORTS:
                    problem(where, f"allows egress to port {port.get('port')}")
            if not rule.get("ports"):
                problem(where, "an egress rule without ports allows every port")
        for rule in policy["spec"].get("ingress") or []:
            if not rule.get("from"):
                problem(where, "an ingress rule without `from` admits everyone")
    client_policy = [
        p
        for p in policies.values()
        if any(
            (peer.get("podSelector") or {}).get("matchLabels", {}).get("zonerank.io/client") == "true"
            for rule in p["spec"].get("ingress") or []
            for peer in rule.get("from") or []
        )
    ]
    for component in SERVICES:
        labels = next(
            (pl for pl in pod_labels.values() if pl.get("app.kubernetes.io/component") == component), None
        )
        if labels is None:
            problem(overlay, f"no {component} Deployment")
        elif not any(selects(p["spec"]["podSelector"], labels) for p in client_policy):
            problem(overlay, f"no NetworkPolicy admits zonerank.io/client pods to {component}")
    ranking = next(
        (pl for pl in pod_labels.values() if pl.get("app.kubernetes.io/component") == "ranking"), {}
    )
    metrics = next(
        (pl for pl in pod_labels.values() if pl.get("app.kubernetes.io/component") == "metrics"), {}
    )
    if not any(
        selects(p["spec"]["podSelector"], metrics)
        and any(
            selects(peer.get("podSelector"), ranking)
            for rule in p["spec"].get("ingress") or []
            for peer in rule.get("from") or []
        )
        for p in policies.values()
    ):
        problem(overlay, "no NetworkPolicy admits ranking to metrics")
    if not any(
        selects(p["spec"]["podSelector"], ranking)
        and any(
            selects(peer.get("podSelector"), metrics)
            for rule in p["spec"].get("egress") or []
            for peer in rule.get("to") or []
        )
        for p in policies.values()
    ):
        problem(overlay, "no NetworkPolicy lets ranking reach metrics (egress)")
    return finish(f"k8s {overlay} ({len(docs)} objects)")


# --- compose ----------------------------------------------------------------------------------


def check_compose() -> int:
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose.get("services") or {}
    where = "deploy/compose.yaml"
    binaries = built_binaries()

    def image(prefix: str) -> list[str]:
        return [n for n, s in services.items() if str(s.get("image", "")).startswith(prefix)]

    for prefix in ("postgres:16", "redis:7", "otel/opentelemetry-collector-contrib:", "jaegertracing/"):
        if not image(prefix):
            problem(where, f"no service runs {prefix}*")
    for name in image("otel/opentelemetry-collector-contrib:"):
        mounts = [str(v).split(":")[0] for v in services[name].get("volumes") or []]
        if not any((COMPOSE.parent / m).resolve() == OTEL for m in mounts):
            problem(f"{where} {name}", "does not mount deploy/otel-collector.yaml")
    for name in image("jaegertracing/"):
        if not any(str(p).endswith(":16686") for p in services[name].get("ports") or []):
            problem(f"{where} {name}", "does not publish the Jaeger UI (16686)")

    for name, service in services.items():
        for dependency, condition in (service.get("depends_on") or {}).items():
            if dependency not in services:
                problem(f"{where} {name}", f"depends on unknown service {dependency}")
            if condition.get("condition") not in (
                "service_started",
                "service_healthy",
                "service_completed_successfully",
            ):
                problem(f"{where} {name}", f"unknown depends_on condition {condition}")
        if "condition" in str(service.get("depends_on")) and isinstance(service.get("depends_on"), list):
            problem(f"{where} {name}", "depends_on as a list cannot carry conditions")
        build = service.get("build")
        if build:
            context = (COMPOSE.parent / build.get("context", ".")).resolve()
            if context != ROOT:
                problem(f"{where} {name}", "build context is not the repository root")
            if (context / build.get("dockerfile", "Dockerfile")).resolve() != DOCKERFILE:
                problem(f"{where} {name}", "is not built from deploy/Dockerfile")
            command = service.get("command")
            if not isinstance(command, list) or command[0] not in binaries:
                problem(f"{where} {name}", f"command {command} runs no binary the image has")

    migrate = services.get("migrate") or {}
    if migrate.get("command") != ["zonerank", "migrate"]:
        problem(where, "no `migrate` service running zonerank migrate")
    for component in SERVICES:
        name = f"zonerank-{component}"
        service = services.get(name)
        if service is None:
            problem(where, f"no service {name}")
            continue
        if service.get("command") != [name]:
            problem(f"{where} {name}", f"command is {service.get('command')}, not [{name}]")
        condition = ((service.get("depends_on") or {}).get("migrate") or {}).get("condition")
        if condition != "service_completed_successfully":
            problem(f"{where} {name}", "does not wait for migrate to complete successfully")
        env = service.get("environment") or {}
        for key in ("DATABASE_URL", "REDIS_URL", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME"):
            if key not in env:
                problem(f"{where} {name}", f"no {key}")
        if env.get("ZONERANK_LISTEN") != f"0.0.0.0:{GRPC_PORT}":
            problem(f"{where} {name}", f"ZONERANK_LISTEN must be 0.0.0.0:{GRPC_PORT}")
        for key in ("DATABASE_URL", "REDIS_URL", "OTEL_EXPORTER_OTLP_ENDPOINT", "ZONERANK_METRICS_ADDR"):
            host = re.match(r"[a-z]+://(?:[^@/]*@)?([A-Za-z0-9-]+)", str(env.get(key, "")))
            if host and host.group(1) not in services:
                problem(f"{where} {name}", f"{key} points at {host.group(1)}, not a compose service")
        grace = int(env.get("ZONERANK_SHUTDOWN_GRACE_SECS", 20))
        stop = re.fullmatch(r"(\d+)s", str(service.get("stop_grace_period", "10s")))
        if not stop or int(stop.group(1)) <= grace:
            problem(f"{where} {name}", f"stop_grace_period must exceed the {grace} s drain")
    ranking_env = (services.get("zonerank-ranking") or {}).get("environment") or {}
    if "ZONERANK_METRICS_ADDR" not in ranking_env:
        problem(where, "zonerank-ranking has no ZONERANK_METRICS_ADDR")
    return finish(f"compose ({len(services)} services)")


# --- OpenTelemetry collector ------------------------------------------------------------------


def check_otel() -> int:
    config = yaml.safe_load(OTEL.read_text())
    where = "deploy/otel-collector.yaml"
    service = config.get("service") or {}
    for extension in service.get("extensions") or []:
        if extension not in (config.get("extensions") or {}):
            problem(where, f"service.extensions names undefined {extension}")
    pipelines = service.get("pipelines") or {}
    for pipeline, spec in pipelines.items():
        for section in ("receivers", "processors", "exporters"):
            for component in spec.get(section) or []:
                if component not in (config.get(section) or {}):
                    problem(where, f"pipeline {pipeline} names undefined {section[:-1]} {component}")
    for needed in ("traces", "metrics"):
        if needed not in pipelines:
            problem(where, f"no {needed} pipeline")
    if "otlp" not in (config.get("receivers") or {}):
        problem(where, "no OTLP receiver")
    grpc = (((config.get("receivers") or {}).get("otlp") or {}).get("protocols") or {}).get("grpc") or {}
    if not str(grpc.get("endpoint", "")).endswith(":4317"):
        problem(where, "the OTLP gRPC receiver is not on :4317")
    if not any("jaeger" in e for e in (pipelines.get("traces") or {}).get("exporters") or []):
        problem(where, "traces are not exported to Jaeger")
    return finish("otel-collector")


def main(argv: list[str]) -> int:
    if len(argv) == 4 and argv[1] == "k8s":
        return check_k8s(argv[2], Path(argv[3]))
    if len(argv) == 2 and argv[1] in ("dockerfile", "compose", "otel"):
        return {"dockerfile": check_dockerfile, "compose": check_compose, "otel": check_otel}[argv[1]]()
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
