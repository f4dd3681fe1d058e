#!/usr/bin/env bash
# Regenerates the Go code of the plugin protocol (actions/sdk/proto/v*/*.proto).
#
# Needs Go and protoc (Debian's protobuf-compiler, installed here when
# missing if run as root). The two protoc plugins are installed, pinned,
# into <repo>/.bin on first use, so a fresh machine needs nothing else. Run it with `make generate`,
# `go generate ./engine/pluginhost` or directly.
set -euo pipefail

PROTOC_GEN_GO_VERSION=v1.36.12     # matches google.golang.org/protobuf in actions/sdk/go.mod
PROTOC_GEN_GO_GRPC_VERSION=v1.6.1  # generates code for grpc >= 1.64

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bin="$root/.bin"
mkdir -p "$bin"

if ! command -v protoc >/dev/null 2>&1; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "generate.sh: installing protoc (Debian package protobuf-compiler)" >&2
		apt-get install -y protobuf-compiler >&2 || { apt-get update >&2 && apt-get install -y protobuf-compiler >&2; }
	else
		echo "generate.sh: protoc not found; install it with: sudo apt-get install protobuf-compiler" >&2
		exit 1
	fi
fi

# install NAME PACKAGE VERSION: installs PACKAGE@VERSION into .bin unless the
# binary there already reports VERSION.
install_tool() {
	local name=$1 pkg=$2 version=$3
	if [ -x "$bin/$name" ] && "$bin/$name" --version 2>/dev/null | grep -q -- "${version#v}"; then
		return
	fi
	echo "generate.sh: installing $pkg@$version into $bin" >&2
	GOBIN="$bin" GOFLAGS= go install "$pkg@$version"
}
install_tool protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go "$PROTOC_GEN_GO_VERSION"
install_tool protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc "$PROTOC_GEN_GO_GRPC_VERSION"

cd "$root"
for proto in actions/sdk/proto/v*/*.proto; do
	PATH="$bin:$PATH" protoc -I . \
		--go_out=. --go_opt=paths=source_relative \
		--go-grpc_out=. --go-grpc_opt=paths=source_relative \
		"$proto"
	echo "generate.sh: generated Go code for $proto" >&2
done
