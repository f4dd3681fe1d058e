#!/bin/sh
# Builds the jobengine .deb and .rpm with nfpm from binaries already built
# (`make packages` builds them first: `make build plugins`).
#
#   packaging/build.sh VERSION
#
# VERSION is what `git describe --tags --always --dirty` prints (or dev);
# packaging/version.sh turns it into a deb/rpm version. The environment can
# point elsewhere than the defaults:
#   JOBENGINE_BIN         the jobengine binary           (bin/jobengine)
#   JOBENGINE_PLUGIN      the example plugin binary      (bin/actions/hello)
#   JOBENGINE_MAINTAINER  Maintainer and changelog signature
#   SOURCE_DATE_EPOCH     date of the changelog entry    (the commit's, else now)
#   DIST                  where the packages are written (dist)
#   NFPM                  an nfpm binary to use instead of installing
#                         github.com/goreleaser/nfpm/v2 v2.45.0 into .bin/
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
# The project's address, as packaging/copyright's Upstream-Contact and the
# README give it (packages_test.go checks they agree).
JOBENGINE_MAINTAINER=${JOBENGINE_MAINTAINER:-jobengine maintainers <maintainers@jobengine.org>}
DIST=${DIST:-dist}

if [ ! -x "$JOBENGINE_BIN" ]; then
	echo "$0: $JOBENGINE_BIN is missing: build it first with 'make build' (or run 'make packages')" >&2
	exit 1
fi
if [ ! -x "$JOBENGINE_PLUGIN" ]; then
	echo "$0: the example plugin $JOBENGINE_PLUGIN is missing: the packages ship it in /usr/libexec/jobengine/examples;" >&2
	echo "$0: build it with 'make plugins' (or run 'make packages') and fix its build if that fails" >&2
	exit 1
fi

# The packages ship static (no cgo: no libc dependency, any glibc),
# position-independent (ASLR) and stripped binaries, as `make build
# plugins` builds them: CGO_ENABLED=0 go build -buildmode=pie -ldflags '-s -w'.
for bin in "$JOBENGINE_BIN" "$JOBENGINE_PLUGIN"; do
	info=$(go version -m "$bin" 2>/dev/null) || {
		echo "$0: $bin is not a Go binary that go version -m can read" >&2
		exit 1
	}
	problem=""
	printf '%s\n' "$info" | grep -q '^[[:space:]]*build[[:space:]]*CGO_ENABLED=0$' || problem="$problem, built with cgo (want CGO_ENABLED=0)"
	printf '%s\n' "$info" | grep -q '^[[:space:]]*build[[:space:]]*-buildmode=pie$' || problem="$problem, not position-independent (want -buildmode=pie)"
	if go tool nm "$bin" >/dev/null 2>&1; then
		problem="$problem, not stripped (want -ldflags '-s -w')"
	fi
	if [ -n "$problem" ]; then
		echo "$0: $bin is not built for the packages${problem}: build it with 'make build plugins'" >&2
		exit 1
	fi
done

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

gen=$(mktemp -d "${TMPDIR:-/tmp}/jobengine-packaging.XXXXXX")
trap 'rm -rf "$gen"' EXIT

# The manual page and the shell completions, from the binary itself (one
# of another architecture than this host's is replaced by go run).
jobengine_here() {
	if [ "$arch" = "$(go env GOHOSTARCH)" ]; then
		"$JOBENGINE_BIN" "$@"
	else
		go run ./cmd/jobengine "$@"
	fi
}
jobengine_here man >"$gen/jobengine.1"
gzip -9n "$gen/jobengine.1"
jobengine_here completion bash >"$gen/jobengine.bash"
jobengine_here completion zsh >"$gen/_jobengine"
jobengine_here completion fish >"$gen/jobengine.fish"

# The changelog (changelog.Debian.gz, the rpm's %changelog): one entry for
# this version, dated like the commit for reproducible packages.
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
	SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || date +%s)
fi
date=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
cat >"$gen/changelog.yaml" <<EOF
- semver: "$pkg_version-1"
  date: $date
  packager: "$JOBENGINE_MAINTAINER"
  deb:
    distributions: [unstable]
    urgency: medium
  changes:
    - note: "Package of jobengine $1."
EOF
# nfpm reads the changelog's path from its configuration only. The License
# field is the rpm's: nfpm would write it into the deb's control file too,
# where dpkg knows no such field (the deb has its copyright file).
for packager in deb rpm; do
	{
		if [ "$packager" = deb ]; then
			grep -v '^license:' packaging/nfpm.yaml
		else
			cat packaging/nfpm.yaml
		fi
		printf '\nchangelog: %s\n' "$gen/changelog.yaml"
	} >"$gen/nfpm-$packager.yaml"
done

mkdir -p "$DIST"
export JOBENGINE_PKG_VERSION="$pkg_version" JOBENGINE_ARCH="$arch" JOBENGINE_BIN JOBENGINE_PLUGIN \
	JOBENGINE_GENERATED="$gen" JOBENGINE_MAINTAINER SOURCE_DATE_EPOCH
for packager in deb rpm; do
	# nfpm names the file itself (jobengine_1.2.3-1_amd64.deb,
	# jobengine-1.2.3-1.x86_64.rpm) and prints it.
	"$NFPM" package --config "$gen/nfpm-$packager.yaml" --packager "$packager" --target "$DIST/" >&2
done
ls -1 "$DIST"/jobengine[_-]"$pkg_version"-1[._]*.deb "$DIST"/jobengine[_-]"$pkg_version"-1[._]*.rpm
