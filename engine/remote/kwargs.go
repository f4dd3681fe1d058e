package remote

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
)

// Kwargs are the arguments of a run, the first line of a transmit stream,
// named as ansible-runner names them so that either worker can run it.
// Paths are relative to the private data directory (the playbook to its
// project/ directory), as ansible-runner's transmit writes them.
type Kwargs struct {
	Ident     string            `json:"ident,omitempty"`
	Playbook  string            `json:"playbook,omitempty"`
	Inventory string            `json:"inventory,omitempty"`
	ExtraVars json.RawMessage   `json:"extravars,omitempty"`
	Limit     string            `json:"limit,omitempty"`
	Forks     int               `json:"forks,omitempty"`
	Verbosity int               `json:"verbosity,omitempty"`
	Cmdline   string            `json:"cmdline,omitempty"`
	EnvVars   map[string]string `json:"envvars,omitempty"`
	Timeout   int               `json:"timeout,omitempty"`
}

// knownKwargs are the arguments a jobengine worker understands; others
// (ansible-runner's options about containers, output, …) are ignored.
var knownKwargs = map[string]bool{
	"ident": true, "playbook": true, "inventory": true, "extravars": true, "limit": true, "forks": true,
	"verbosity": true, "cmdline": true, "envvars": true, "timeout": true,
}

// ParseKwargs decodes the kwargs of a stream. A null value counts as
// unset (ansible-runner sends many); ignored names are returned.
func ParseKwargs(raw json.RawMessage) (Kwargs, []string, error) {
	var k Kwargs
	var all map[string]json.RawMessage
	if err := json.Unmarshal(raw, &all); err != nil || all == nil {
		return k, nil, &StreamError{Reason: "\"kwargs\" must be a JSON object", Excerpt: excerpt(raw)}
	}
	var ignored []string
	clean := map[string]json.RawMessage{}
	for name, v := range all {
		if string(v) == "null" {
			continue
		}
		if !knownKwargs[name] {
			ignored = append(ignored, name)
			continue
		}
		clean[name] = v
	}
	sort.Strings(ignored)
	data, _ := json.Marshal(clean)
	if err := json.NewDecoder(bytes.NewReader(data)).Decode(&k); err != nil {
		return k, ignored, &StreamError{Reason: "kwargs: " + err.Error(), Excerpt: excerpt(raw)}
	}
	if len(k.ExtraVars) > 0 {
		var m map[string]json.RawMessage
		if json.Unmarshal(k.ExtraVars, &m) != nil || m == nil {
			return k, ignored, &StreamError{Reason: "kwargs: \"extravars\" must be a JSON object"}
		}
	}
	for _, p := range []string{k.Playbook, k.Inventory} {
		if p != "" && (filepath.IsAbs(p) || strings.HasPrefix(filepath.Clean(p), "..")) {
			return k, ignored, &StreamError{Reason: fmt.Sprintf("kwargs: %q must be a path inside the private data directory", p)}
		}
	}
	return k, ignored, nil
}

// cmdlineFlags reads the options of "cmdline" a jobengine worker supports.
func cmdlineFlags(cmdline string) (diff, check bool, err error) {
	for _, f := range strings.Fields(cmdline) {
		switch f {
		case "--diff", "-D":
			diff = true
		case "--check", "-C":
			check = true
		default:
			return false, false, fmt.Errorf("cmdline option %q is not supported by jobengine worker (only --diff and --check)", f)
		}
	}
	return diff, check, nil
}
