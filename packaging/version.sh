#!/bin/sh
# Prints the package version (valid for deb and rpm, and ordered the same
# way by both) of a `git describe --tags --always --dirty` output:
#
#   v1.2.3               -> 1.2.3
#   v1.2.3-rc.1          -> 1.2.3~rc.1           pre-release: before 1.2.3
#   v1.2.3-4-gabc1234    -> 1.2.3+4.gabc1234     4 commits after 1.2.3
#   v1.2.3-dirty         -> 1.2.3+0.dirty
#   abc1234              -> 0.0.0~git.abc1234    no tag yet
#   dev                  -> 0.0.0~dev            no git at all
#
# Neither format allows '-' in a version (deb keeps it for the revision,
# rpm for the release); '~' sorts before and '+' after what precedes it in
# both. Anything else is refused with a clear message.
set -eu

if [ $# -ne 1 ] || [ -z "$1" ]; then
	echo "usage: $0 VERSION   (VERSION as printed by git describe --tags --always --dirty)" >&2
	exit 2
fi
in=$1

dirty=""
case "$in" in
*-dirty)
	dirty=dirty
	in=${in%-dirty}
	;;
esac

# join A B SEP: A, then B after SEP when B is not empty.
join() {
	if [ -n "$2" ]; then printf '%s%s%s' "$1" "$3" "$2"; else printf '%s' "$1"; fi
}

if [ "$in" = dev ]; then
	out=$(join 0.0.0~dev "$dirty" .)
elif printf '%s' "$in" | grep -Eq '^[0-9a-f]{7,40}$'; then
	out=$(join "0.0.0~git.$in" "$dirty" .)
else
	v=${in#v}
	# base, optional pre-release, optional "-N-gHASH" from git describe.
	re='^([0-9]+(\.[0-9]+)*)(-([0-9A-Za-z.]*[A-Za-z][0-9A-Za-z.]*))?(-([0-9]+)-(g[0-9a-f]+))?$'
	if ! printf '%s' "$v" | grep -Eq "$re"; then
		echo "$0: cannot make a deb/rpm version of '$1': expected a tag like v1.2.3 or v1.2.3-rc.1, optionally followed by -N-gHASH and -dirty, a bare commit hash, or dev" >&2
		exit 2
	fi
	base=$(printf '%s' "$v" | sed -E "s/$re/\\1/")
	pre=$(printf '%s' "$v" | sed -E "s/$re/\\4/")
	n=$(printf '%s' "$v" | sed -E "s/$re/\\6/")
	hash=$(printf '%s' "$v" | sed -E "s/$re/\\7/")
	out=$base
	[ -n "$pre" ] && out="$out~$pre"
	# A dirty tree on the tag itself is "0 commits after" it, so that dpkg
	# and rpm both order it before the next commit.
	post=""
	if [ -n "$n" ]; then
		post="$n.$hash"
	elif [ -n "$dirty" ]; then
		post=0
	fi
	post=$(join "$post" "$dirty" .)
	[ -n "$post" ] && out="$out+$post"
fi
printf '%s\n' "$out"
