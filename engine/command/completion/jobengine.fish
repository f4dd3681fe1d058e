# fish completion of jobengine. Installed in a vendor_completions.d
# directory by the packages; without them: jobengine completion fish | source
#
# The binary answers what may come next: the words typed so far followed
# by --generate-bash-completion print the commands (as name:description
# when its environment has 0=zsh) or the flags that fit.

function __jobengine_candidates
    set -l typed (commandline -opc)
    set -l cur (commandline -ct)
    if string match -q -- '-*' $cur
        env 0=zsh $typed $cur --generate-bash-completion 2>/dev/null
    else
        env 0=zsh $typed --generate-bash-completion 2>/dev/null
    end | string replace -r '^([^:]+):' '$1\t'
end

# Files are offered only where the binary has nothing to say (a flag's
# value, an argument).
complete -c jobengine -n 'test -n "$(__jobengine_candidates)"' -f -a '(__jobengine_candidates)'
