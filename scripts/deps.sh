#!/bin/sh
# Installs what the tests need on a Debian machine when it is missing:
# ZooKeeper (the Debian package; the tests start it themselves, no service)
# python3-kazoo (the interoperability tests), python3-aiosmtpd (a real SMTP
# server for the e-mail notification tests), chromium (the dashboard's
# browser tests, headless) and what the Python example plugin's test needs
# (python3-grpcio, python3-protobuf, protobuf-compiler,
# protobuf-compiler-grpc). Run as root, or with sudo.
# Extras on request, as arguments: protoc, rpm, lintian, shells (zsh and
# fish, for the completion tests).
set -eu

need=""
[ -f /usr/share/java/zookeeper.jar ] || need="$need zookeeper"
command -v java >/dev/null 2>&1 || need="$need default-jre-headless"
/usr/bin/python3 -c 'import kazoo' >/dev/null 2>&1 || need="$need python3-kazoo"
/usr/bin/python3 -c 'import aiosmtpd' >/dev/null 2>&1 || need="$need python3-aiosmtpd"
command -v chromium >/dev/null 2>&1 || need="$need chromium"
# Playbook runs, project and inventory updates: git and ansible-core
# (ansible-playbook, ansible-inventory).
command -v git >/dev/null 2>&1 || need="$need git"
command -v ansible-inventory >/dev/null 2>&1 || need="$need ansible-core"
# Remote nodes over SSH (the command tests and the fault suite start a
# loopback sshd of their own; no service).
[ -x /usr/sbin/sshd ] || need="$need openssh-server"
# The Python example plugin (actions/examples/python): gRPC and protobuf for
# Python, protoc and its gRPC plugin for Python to generate its stubs.
/usr/bin/python3 -c 'import grpc' >/dev/null 2>&1 || need="$need python3-grpcio"
/usr/bin/python3 -c 'import google.protobuf' >/dev/null 2>&1 || need="$need python3-protobuf"
command -v protoc >/dev/null 2>&1 || need="$need protobuf-compiler"
[ -x /usr/bin/grpc_python_plugin ] || need="$need protobuf-compiler-grpc"
for extra in "$@"; do
	case "$extra" in
	protoc) command -v protoc >/dev/null 2>&1 || need="$need protobuf-compiler" ;;
	rpm) command -v rpm >/dev/null 2>&1 || need="$need rpm" ;;
	lintian) command -v lintian >/dev/null 2>&1 || need="$need lintian" ;;
	shells)
		command -v zsh >/dev/null 2>&1 || need="$need zsh"
		command -v fish >/dev/null 2>&1 || need="$need fish"
		;;
	esac
done

[ -z "$need" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "missing Debian packages:$need" >&2
	echo "install them with: sudo apt-get install -y$need" >&2
	exit 1
fi
echo "installing Debian packages:$need" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $need >/dev/null
