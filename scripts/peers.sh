#!/usr/bin/env bash
# Installs the real peers the integration tests drive: registry clients, the
# CNCF Distribution reference registry, cosign, opm, skopeo, podman and runc, the object stores
# (MinIO, fake-gcs-server, Azurite) and a PostgreSQL server. Idempotent: a
# peer already at its pinned version is left alone. Fails loudly when one
# cannot be had, because a test that silently skips its peer proves nothing.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin="${BERTH_PEERS_BIN:-$here/.peers/bin}"
mkdir -p "$bin"

goinstall() { # name module@version
  local name=$1 mod=$2 stamp="$bin/.$1.version"
  if [ -x "$bin/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$mod" ]; then return 0; fi
  echo "peers: go install $mod" >&2
  GOBIN="$bin" go install "$mod" || { echo "peers: FAILED to install $mod" >&2; exit 1; }
  echo "$mod" > "$stamp"
}

goinstall crane    github.com/google/go-containerregistry/cmd/crane@v0.22.1
goinstall regctl   github.com/regclient/regclient/cmd/regctl@v0.11.7
goinstall regsync  github.com/regclient/regclient/cmd/regsync@v0.11.7
goinstall registry github.com/distribution/distribution/v3/cmd/registry@v3.1.2
goinstall minio    github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c
goinstall fake-gcs-server github.com/fsouza/fake-gcs-server@v1.56.1
# cosign makes the keys and sigstore signatures the signature-policy tests verify.
goinstall cosign   github.com/sigstore/cosign/v2/cmd/cosign@v2.6.5

# opm (operator-registry), the judge of rebuilt operator catalogs. `go install
# ...@version` is refused for this module, so it is built from a throw-away
# module that requires it; it needs cgo and these build tags.
opminstall() { # version
  local ver=$1 stamp="$bin/.opm.version" mod="github.com/operator-framework/operator-registry@$1" tmp
  if [ -x "$bin/opm" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$mod" ]; then return 0; fi
  echo "peers: building opm from $mod" >&2
  tmp=$(mktemp -d)
  # (&& chains: set -e does not apply inside a subshell tested with ||)
  ( cd "$tmp" &&
    printf 'module opmbuild\n' > go.mod &&
    printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/operator-framework/operator-registry/cmd/opm"\n' > tools.go &&
    go get "$mod" &&
    go mod tidy &&
    CGO_ENABLED=1 go build -tags json1,containers_image_openpgp -o "$bin/opm" github.com/operator-framework/operator-registry/cmd/opm
  ) || { rm -rf "$tmp"; echo "peers: FAILED to build opm from $mod (needs gcc)" >&2; exit 1; }
  rm -rf "$tmp"
  echo "$mod" > "$stamp"
}
opminstall v1.60.0

# Azurite (the Azure Storage emulator) is a Node package: installed under
# .peers/node next to the bin directory, reached through a wrapper there.
npminstall() { # wrapper package@version
  local name=$1 pkg=$2 stamp="$bin/.$1.version" prefix
  prefix="$(dirname "$bin")/node"
  if [ -x "$bin/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$pkg" ]; then return 0; fi
  command -v npm >/dev/null || { echo "peers: FAILED to install $pkg: npm (Node.js) is not installed" >&2; exit 1; }
  echo "peers: npm install $pkg" >&2
  mkdir -p "$prefix"
  npm install --prefix "$prefix" --no-audit --no-fund --silent "$pkg" || { echo "peers: FAILED to install $pkg" >&2; exit 1; }
  [ -x "$prefix/node_modules/.bin/$name" ] || { echo "peers: FAILED: $pkg has no $name" >&2; exit 1; }
  printf '#!/bin/sh\nexec "%s" "$@"\n' "$prefix/node_modules/.bin/$name" > "$bin/$name"
  chmod +x "$bin/$name"
  echo "$pkg" > "$stamp"
}
npminstall azurite-blob azurite@3.35.0

# PostgreSQL: the tests run initdb and postgres themselves (internal/testpeer),
# from PATH or from Debian's /usr/lib/postgresql/VERSION/bin.
have_postgres() {
  { command -v initdb && command -v postgres; } >/dev/null 2>&1 && return 0
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null && compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null
}
need_apt=()
have_postgres || need_apt+=(postgresql)
command -v skopeo >/dev/null || need_apt+=(skopeo)
command -v podman >/dev/null || need_apt+=(podman)
command -v runc >/dev/null || need_apt+=(runc) # podman run (berth's own image) uses it
command -v chromium >/dev/null || need_apt+=(chromium) # the web console's browser tests drive it headless
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "peers: apt-get install ${need_apt[*]}" >&2
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq || true
  $sudo apt-get install -y -qq "${need_apt[@]}" >/dev/null || { echo "peers: FAILED to apt-get install ${need_apt[*]}" >&2; exit 1; }
fi
for p in crane regctl regsync registry minio fake-gcs-server cosign opm azurite-blob; do [ -x "$bin/$p" ] || { echo "peers: $p missing" >&2; exit 1; }; done
for p in skopeo podman runc chromium; do command -v $p >/dev/null || { echo "peers: $p missing" >&2; exit 1; }; done
have_postgres || { echo "peers: postgresql (initdb, postgres) missing" >&2; exit 1; }
echo "$bin"
