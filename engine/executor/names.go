package executor

import (
	"fmt"
	"os"
)

// MaxThreads bounds Config.Threads: each worker may run a plugin process.
const MaxThreads = 1024

// maxNameBytes bounds an executor's name.
const maxNameBytes = 128

// ValidName reports whether s can name an executor: 1–128 letters,
// digits, '.', '_' or '-', other than "." and "..", since it names the
// executor's membership node.
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > maxNameBytes || s == "." || s == ".." {
		return false
	}
	for _, c := range s {
		if !nameChar(c) {
			return false
		}
	}
	return true
}

func nameChar(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.'
}

// DefaultName is the name of an executor that is given none: host-pid,
// with what a name cannot hold of the host name replaced by '-'.
func DefaultName(host string) string {
	clean := []rune(host)
	for i, c := range clean {
		if !nameChar(c) {
			clean[i] = '-'
		}
	}
	suffix := fmt.Sprintf("-%d", os.Getpid())
	name := string(clean)
	if len(name)+len(suffix) > maxNameBytes {
		name = name[:maxNameBytes-len(suffix)]
	}
	return name + suffix
}
