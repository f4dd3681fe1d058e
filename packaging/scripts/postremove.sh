#!/bin/sh
# After the files are removed (dpkg: remove|purge|upgrade|...; rpm: 0|1).
# A purge also deletes the logs and state in /var/log/jobengine and
# /var/lib/jobengine. The jobengine user and group are kept, even on purge,
# so that no file they still own can pass to a later user with the same
# id; `userdel jobengine` removes them (see docs/operations.md).
set -eu

case "${1:-}" in
purge)
	rm -rf /var/log/jobengine /var/lib/jobengine
	;;
esac

case "${1:-}" in
remove | purge | 0)
	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload >/dev/null 2>&1 || true
	fi
	;;
esac
exit 0
