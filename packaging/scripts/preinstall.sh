#!/bin/sh
# Before the files are unpacked (dpkg: install|upgrade; rpm: 1|2): create
# the system user and group the daemons run as, so the package's
# directories can be owned by them. Idempotent: an existing user is kept
# as it is.
set -eu

user=jobengine
home=/var/lib/jobengine

if ! getent group "$user" >/dev/null 2>&1; then
	groupadd --system "$user"
fi
if ! getent passwd "$user" >/dev/null 2>&1; then
	shell=/bin/false
	for s in /usr/sbin/nologin /sbin/nologin; do
		if [ -x "$s" ]; then
			shell=$s
			break
		fi
	done
	useradd --system --gid "$user" --home-dir "$home" --no-create-home \
		--shell "$shell" --comment "jobengine daemons" "$user"
fi
exit 0
