# bash completion of jobengine.                            -*- shell-script -*-
# Installed as /usr/share/bash-completion/completions/jobengine by the
# packages; without them: source <(jobengine completion bash)
#
# The binary answers what may come next: the words typed so far followed
# by --generate-bash-completion print the commands or flags that fit.

_jobengine() {
	local cur=${COMP_WORDS[COMP_CWORD]}
	local -a words=("${COMP_WORDS[@]:0:COMP_CWORD}")
	local opts
	if [[ $cur == -* ]]; then
		opts=$("${words[@]}" "$cur" --generate-bash-completion 2>/dev/null)
	else
		opts=$("${words[@]}" --generate-bash-completion 2>/dev/null)
	fi
	local IFS=$'\n'
	# shellcheck disable=SC2207
	COMPREPLY=($(compgen -W "$opts" -- "$cur"))
}

# Without candidates (a flag's value, a file), bash completes as usual.
complete -o bashdefault -o default -F _jobengine jobengine
