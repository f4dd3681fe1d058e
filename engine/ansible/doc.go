// Package ansible runs ansible-playbook for a job: it writes a private data
// directory (the inventory, extra variables, a callback plugin and, for
// credentials, key and password files), starts ansible-playbook in its own
// process group, turns every play, task and host result into an event named
// as ansible-runner names it, redacts secrets from them, keeps artifacts in
// ansible-runner's layout, and stops the whole process group on cancel or
// timeout.
//
// The events come from a stdout callback plugin shipped in this package
// (callback/jobengine.py, embedded in the binary): it keeps the default
// callback's text and writes one JSON line per event to a pipe the run
// reads (file descriptor 3 of ansible-playbook).
package ansible
