#!/usr/bin/env bash
# Print the absolute path of a directory that contains kube-apiserver, etcd and kubectl
# (the layout envtest uses), providing it first when needed.
#
# The directory comes from, in order:
#   1. KUBEBUILDER_ASSETS, used as it is when set;
#   2. the cache outside the repository:
#      ${EXPERIO_SSO_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/experio-sso-operator}/k8s-<version>-etcd-<version>;
#   3. a build from source with Go and the Go module proxy into that cache.
#
# Prebuilt Kubernetes downloads are out of reach on the machines this project targets,
# so the build path is the normal one for a fresh machine. It takes several minutes on
# two cores. Progress goes to stderr; stdout carries the path alone, so that callers can
# write ASSETS=$(hack/k8s-assets.sh).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=k8s-versions.env
source "$here/k8s-versions.env"

log() { printf 'k8s-assets: %s\n' "$*" >&2; }

has_binaries() {
    local dir=$1
    [[ -x "$dir/kube-apiserver" && -x "$dir/etcd" && -x "$dir/kubectl" ]]
}

if [[ -n "${KUBEBUILDER_ASSETS:-}" ]]; then
    if ! has_binaries "$KUBEBUILDER_ASSETS"; then
        log "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS lacks kube-apiserver, etcd or kubectl;" \
            "unset it to build them, or point it at a directory that has all three"
        exit 1
    fi
    cd "$KUBEBUILDER_ASSETS" && pwd
    exit 0
fi

cache_root=${EXPERIO_SSO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/experio-sso-operator}
assets="$cache_root/k8s-$KUBERNETES_VERSION-etcd-$ETCD_VERSION"
if has_binaries "$assets"; then
    echo "$assets"
    exit 0
fi

command -v go >/dev/null || { log "go is not on PATH; install Go or set KUBEBUILDER_ASSETS"; exit 1; }
mkdir -p "$cache_root"

# Two builds at once would each take every core for minutes; the second one waits and
# then finds the binaries in place.
exec 9>"$cache_root/.build.lock"
flock 9
if has_binaries "$assets"; then
    echo "$assets"
    exit 0
fi

work=$(mktemp -d "$cache_root/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
export CGO_ENABLED=0
started=$SECONDS

# --- kube-apiserver and kubectl -------------------------------------------------------
# k8s.io/kubernetes requires its staging modules (k8s.io/api, k8s.io/apimachinery, ...)
# at v0.0.0 and replaces them with ./staging paths that do not exist outside its own
# repository. A wrapper module replaces each of them with the matching published v0.x.y,
# read from the replace block of the pinned release's go.mod, so the list never goes stale.
log "building kube-apiserver and kubectl v$KUBERNETES_VERSION (several minutes on a cold cache)"
mkdir -p "$work/kubernetes"
kubernetes_gomod=$(go mod download -json "k8s.io/kubernetes@v$KUBERNETES_VERSION" \
    | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')
staging_version="v0.${KUBERNETES_VERSION#1.}"
staging_modules=$(sed -n 's#^[[:space:]]*\(k8s\.io/[^[:space:]]*\) => \./staging/.*#\1#p' "$kubernetes_gomod")
[[ -n "$staging_modules" ]] || { log "no staging modules found in $kubernetes_gomod"; exit 1; }
log "replacing $(wc -l <<<"$staging_modules") staging modules with $staging_version"
{
    echo "module experio.local/k8s-assets"
    echo
    echo "go 1.24.0"
    echo
    echo "require k8s.io/kubernetes v$KUBERNETES_VERSION"
    echo
    echo "replace ("
    while read -r module; do
        echo "	$module => $module $staging_version"
    done <<<"$staging_modules"
    echo ")"
} >"$work/kubernetes/go.mod"
cat >"$work/kubernetes/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
version_flags="-X k8s.io/component-base/version.gitVersion=v$KUBERNETES_VERSION"
version_flags+=" -X k8s.io/component-base/version.gitMajor=1"
version_flags+=" -X k8s.io/component-base/version.gitMinor=$(cut -d. -f2 <<<"$KUBERNETES_VERSION")"
version_flags+=" -X k8s.io/component-base/version.gitTreeState=clean"
(
    cd "$work/kubernetes"
    go mod tidy >&2
    go build -trimpath -ldflags "-s -w $version_flags" -o "$work/out/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver >&2
    go build -trimpath -ldflags "-s -w $version_flags" -o "$work/out/kubectl" k8s.io/kubernetes/cmd/kubectl >&2
)

# --- etcd -------------------------------------------------------------------------------
# etcd's command lives in its own repository module; the server module exports the same
# entry point as the package etcdmain, so a three-line main builds the real binary.
log "building etcd v$ETCD_VERSION"
mkdir -p "$work/etcd"
cat >"$work/etcd/go.mod" <<GOMOD
module experio.local/etcd

go 1.24.0

require go.etcd.io/etcd/server/v3 v$ETCD_VERSION
GOMOD
cat >"$work/etcd/main.go" <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
(
    cd "$work/etcd"
    go mod tidy >&2
    go build -trimpath -ldflags "-s -w" -o "$work/out/etcd" . >&2
)

rm -rf "$assets"
mv "$work/out" "$assets"
log "built in $((SECONDS - started)) s into $assets"
echo "$assets"
