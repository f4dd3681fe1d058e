#!/bin/sh
# Builds the jobengine .deb and .rpm with nfpm from binaries already built
# (`make packages` builds them first: `make build plugins`).
#
#   packaging/build.sh VERSION
#
# VERSION is what `git describe --tags --always --dirty` prints (or dev);
# packaging/version.sh turns it into a deb/rpm version. The environment can
# point elsewhere than the defaults:
#   JOBENGINE_BIN     the jobengine binary           (bin/jobengine)
#   JOBENGINE_PLUGIN  the example plugin binary      (bin/actions/hello)
#   DIST              where the packages are written (dist)
#   NFPM              an nfpm binary to use instead of installing
#                     github.com/goreleaser/nfpm/v2 v2.45.0 into .bin/
# It prints the path of each package it wrote.
set -eu

NFPM_MODULE=github.com/goreleaser/nfpm/v2
NFPM_VERSION=v2.45.0

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

if [ $# -ne 1 ] || [ -z "$1" ]; then
	echo "usage: $0 VERSION   (e.g. \$(git describe --tags --always --dirty), or dev)" >&2
	exit 2
fi
pkg_version=$(./packaging/version.sh "$1")

JOBENGINE_BIN=${JOBENGINE_BIN:-bin/jobengine}
JOBENGINE_PLUGIN=${JOBENGINE_PLUGIN:-bin/actions/hello}
DIST=${DIST:-dist}

if [ ! -x "$JOBENGINE_BIN" ]; then
	echo "$0: $JOBENGINE_BIN is missing: build it first with 'make build' (or run 'make packages')" >&2
	exit 1
fi
if [ ! -x "$JOBENGINE_PLUGIN" ]; then
	echo "$0: the example plugin $JOBENGINE_PLUGIN is missing: the packages ship it in /usr/libexec/jobengine/actions;" >&2
	echo "$0: build it with 'make plugins' (or run 'make packages') and fix its build if that fails" >&2
	exit 1
fi

# The binaries decide the packages' architecture.
arch=$(go version -m "$JOBENGINE_BIN" 2>/dev/null | awk '$1 == "build" && $2 ~ /^GOARCH=/ { sub(/^GOARCH=/, "", $2); print $2 }')
if [ -z "$arch" ]; then
	arch=$(go env GOARCH)
fi

# nfpm is pinned, built once into .bin/ and not part of go.mod.
if [ -z "${NFPM:-}" ]; then
	NFPM=$root/.bin/nfpm
	if ! go version -m "$NFPM" 2>/dev/null | grep -q "mod[[:space:]]*$NFPM_MODULE[[:space:]]*$NFPM_VERSION"; then
		echo "installing nfpm $NFPM_VERSION into .bin/" >&2
		if ! GOBIN=$root/.bin GOFLAGS=-mod=mod go install "$NFPM_MODULE/cmd/nfpm@$NFPM_VERSION"; then
			echo "$0: could not install nfpm $NFPM_VERSION (go install $NFPM_MODULE/cmd/nfpm@$NFPM_VERSION); it needs the Go module proxy" >&2
			exit 1
		fi
	fi
fi

mkdir -p "$DIST"
export JOBENGINE_PKG_VERSION="$pkg_version" JOBENGINE_ARCH="$arch" JOBENGINE_BIN JOBENGINE_PLUGIN
for packager in deb rpm; do
	# nfpm names the file itself (jobengine_1.2.3-1_amd64.deb,
	# jobengine-1.2.3-1.x86_64.rpm) and prints it.
	"$NFPM" package --config packaging/nfpm.yaml --packager "$packager" --target "$DIST/" >&2
done
ls -1 "$DIST"/jobengine[_-]"$pkg_version"-1[._]*.deb "$DIST"/jobengine[_-]"$pkg_version"-1[._]*.rpm
