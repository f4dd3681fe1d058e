#compdef jobengine
# zsh completion of jobengine. Installed as _jobengine in a directory of
# $fpath by the packages; without them, after compinit:
#   source <(jobengine completion zsh)
#
# The binary answers what may come next: the words typed so far followed
# by --generate-bash-completion print the commands (as name:description
# when its environment has 0=zsh) or the flags that fit.

_jobengine() {
	local cur=${words[CURRENT]}
	local -a typed=("${(@)words[1,CURRENT-1]}")
	local -a opts
	if [[ $cur == -* ]]; then
		opts=("${(@f)$(env 0=zsh "${typed[@]}" "$cur" --generate-bash-completion 2>/dev/null)}")
	else
		opts=("${(@f)$(env 0=zsh "${typed[@]}" --generate-bash-completion 2>/dev/null)}")
	fi
	if [[ -n ${opts[1]} ]]; then
		_describe 'jobengine' opts
	else
		_files
	fi
}

# Autoloaded from $fpath, this file is the body of _jobengine: run it.
# Sourced, it only declares the completion.
if [[ ${funcstack[1]} == _jobengine ]]; then
	_jobengine "$@"
else
	compdef _jobengine jobengine
fi
