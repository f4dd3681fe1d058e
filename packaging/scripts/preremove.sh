#!/bin/sh
# Before the files are removed. Only on a real removal (dpkg: remove;
# rpm: 0), not on an upgrade (dpkg: upgrade; rpm: 1): stop the daemons
# and disable their units, so nothing is left pointing at a removed binary.
set -eu

case "${1:-}" in
remove | 0) ;;
*) exit 0 ;;
esac

if [ -d /run/systemd/system ]; then
	# The executor drains its running jobs first (up to TimeoutStopSec).
	systemctl stop 'jobengine-distributor@*.service' jobengine-controller.service jobengine-executor.service >/dev/null 2>&1 || true
fi

# Disabling only removes symlinks; systemctl does it without a running
# systemd too. Template instances are found by their symlinks.
if command -v systemctl >/dev/null 2>&1; then
	units="jobengine-executor.service jobengine-controller.service"
	for link in /etc/systemd/system/*.wants/jobengine-distributor@*.service; do
		[ -L "$link" ] || continue
		units="$units ${link##*/}"
	done
	# shellcheck disable=SC2086
	systemctl --no-reload disable $units >/dev/null 2>&1 || true
fi
exit 0
