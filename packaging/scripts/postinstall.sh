#!/bin/sh
# After the files are in place (dpkg: configure; rpm: 1|2). The daemons are
# neither enabled nor started: they need ZooKeeper's address first (see
# /etc/default/jobengine-executor). On upgrade, running daemons keep the old
# binary until they are restarted; a note says so.
set -eu

# The package's own ownership of these directories is lost if the user was
# missing while unpacking (an rpm installed with --noscripts, say).
for d in /var/log/jobengine /var/lib/jobengine; do
	if [ -d "$d" ]; then
		chown jobengine:jobengine "$d"
		chmod 0750 "$d"
	fi
done

# Settings may hold credentials: an administrator's copy kept from an
# earlier version, which installed them 0644, is made root's alone too.
for f in /etc/default/jobengine-executor /etc/default/jobengine-distributor; do
	if [ -f "$f" ]; then
		chmod 0640 "$f"
	fi
done

# Only a running systemd has units to reload; in a container or a chroot
# there is none, and that is fine.
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
	running=$(systemctl list-units --state=active --no-legend --plain \
		'jobengine-executor.service' 'jobengine-distributor@*.service' 2>/dev/null |
		awk '{print $1}' | tr '\n' ' ') || running=""
	if [ -n "$running" ]; then
		echo "jobengine: these daemons still run the previous version; restart them when convenient:" >&2
		echo "  systemctl restart $running" >&2
	fi
fi
exit 0
