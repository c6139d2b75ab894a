#!/usr/bin/env bash
# Run the operator on a kind cluster, for users with Docker. NOT run by this project's CI,
# which has no Docker engine: treat it as a convenience, not as a tested path.
#
# It creates the cluster, builds and loads the image, installs deploy/, runs the sidecar
# emulator in the examples' namespace as the Service "propelauth" (port 2884, the default
# spec.sidecar.url), applies deploy/examples/ and waits until everything is Ready.
#   hack/kind-demo.sh            create and deploy
#   hack/kind-demo.sh --delete   delete the cluster
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cluster=${KIND_CLUSTER_NAME:-experio-sso}
image=experio-sso-operator:kind
namespace=experio

if [[ ${1:-} == --delete ]]; then
    kind delete cluster --name "$cluster"
    exit 0
fi

for tool in kind docker kubectl; do
    command -v "$tool" >/dev/null || { echo "kind-demo: $tool is not installed" >&2; exit 1; }
done

kind get clusters | grep -qx "$cluster" || kind create cluster --name "$cluster"
kubectl config use-context "kind-$cluster"

docker build -t "$image" .
kind load docker-image "$image" --name "$cluster"

kubectl apply -k deploy/
kubectl -n experio-sso-system set image deployment/experio-sso-operator "operator=$image"
kubectl -n experio-sso-system rollout status deployment/experio-sso-operator --timeout=180s

# The sidecar emulator ships in the same image. It takes the examples' setup secret, so the
# operator's initial setup succeeds against it.
kubectl apply -f deploy/examples/namespace.yaml
setup_secret=$(kubectl kustomize deploy/examples \
    | awk '/name: propelauth-setup/{found=1} found && /setupSecret:/{print $2; exit}')
kubectl -n "$namespace" apply -f - <<YAML
apiVersion: apps/v1
kind: Deployment
metadata:
  name: propelauth
spec:
  replicas: 1
  selector: {matchLabels: {app: propelauth-emulator}}
  template:
    metadata: {labels: {app: propelauth-emulator}}
    spec:
      securityContext: {runAsNonRoot: true, runAsUser: 65532}
      containers:
        - name: emulator
          image: $image
          imagePullPolicy: IfNotPresent
          command: [propelauth-emulator, --host=0.0.0.0, --port=2884, --state=/data/state.sqlite3]
          env: [{name: PROPELAUTH_EMULATOR_SETUP_SECRET, value: "$setup_secret"}]
          ports: [{containerPort: 2884}]
          volumeMounts: [{name: data, mountPath: /data}]
      volumes: [{name: data, emptyDir: {}}]
---
apiVersion: v1
kind: Service
metadata:
  name: propelauth
spec:
  selector: {app: propelauth-emulator}
  ports: [{port: 2884, targetPort: 2884}]
YAML
kubectl -n "$namespace" rollout status deployment/propelauth --timeout=120s

kubectl apply -k deploy/examples
kubectl -n "$namespace" wait --for=condition=Ready experioauthsettings,ssoclients --all --timeout=180s
kubectl get experioauthsettings,ssoclients -n "$namespace"
echo "kind-demo: ready; delete with: hack/kind-demo.sh --delete"
