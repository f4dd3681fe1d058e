package ansible

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// InventoryHosts validates an inventory in Ansible's JSON format (the
// output of `ansible-inventory --list`: groups by name, each with "hosts",
// "children" and "vars", and "_meta": {"hostvars": {host: {…}}}) and
// returns its hosts, sorted.
func InventoryHosts(raw json.RawMessage) ([]string, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: \"inventory\": "+format, append([]any{ErrPayload}, args...)...)
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, bad("missing: give Ansible's JSON inventory, e.g. {\"all\": {\"hosts\": [\"web1\"]}}")
	}
	var groups map[string]json.RawMessage
	if err := json.Unmarshal(raw, &groups); err != nil || groups == nil {
		return nil, bad("not a JSON object in Ansible's inventory format (the output of ansible-inventory --list)")
	}
	hosts := map[string]bool{}
	addHost := func(group, h string) error {
		if h == "" || strings.ContainsAny(h, " \t\n\r\x00") {
			return bad("group %q: %q is not a host name", group, h)
		}
		hosts[h] = true
		return nil
	}
	for name, body := range groups {
		if name == "_meta" {
			var meta struct {
				HostVars map[string]map[string]json.RawMessage `json:"hostvars"`
			}
			if err := json.Unmarshal(body, &meta); err != nil {
				return nil, bad("\"_meta\" must be {\"hostvars\": {host: {variables}}}")
			}
			for h := range meta.HostVars {
				if err := addHost("_meta", h); err != nil {
					return nil, err
				}
			}
			continue
		}
		if name == "" || strings.ContainsAny(name, " \t\n\r\x00") {
			return nil, bad("%q is not a group name", name)
		}
		// The old script format lists a group's hosts directly.
		var list []string
		if json.Unmarshal(body, &list) == nil {
			for _, h := range list {
				if err := addHost(name, h); err != nil {
					return nil, err
				}
			}
			continue
		}
		var g struct {
			Hosts    []string                   `json:"hosts"`
			Children []string                   `json:"children"`
			Vars     map[string]json.RawMessage `json:"vars"`
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&g); err != nil {
			return nil, bad("group %q: want {\"hosts\": [names], \"children\": [groups], \"vars\": {…}}: %v", name, err)
		}
		for _, h := range g.Hosts {
			if err := addHost(name, h); err != nil {
				return nil, err
			}
		}
	}
	out := make([]string, 0, len(hosts))
	for h := range hosts {
		out = append(out, h)
	}
	sort.Strings(out)
	return out, nil
}

// inventoryScript prints the inventory next to it. Ansible reads the JSON
// inventory format through its script plugin, so the inventory is an
// executable that prints it, as AWX writes it; "_meta" spares the calls
// per host, answered anyway.
const inventoryScript = `#!/bin/sh
# Written by jobengine: prints this job's inventory (Ansible's JSON inventory).
case "$1" in
--host) echo '{}' ;;
*) exec cat "$(dirname "$0")/hosts.json" ;;
esac
`

// WriteInventory writes an inventory in Ansible's JSON format into
// dir/inventory (hosts.json and the executable hosts that prints it) and
// returns the path to give ansible-playbook's -i: dir/inventory/hosts.
func WriteInventory(dir string, raw json.RawMessage) (string, error) {
	inv := filepath.Join(dir, "inventory")
	if err := os.MkdirAll(inv, 0o700); err != nil {
		return "", err
	}
	var withMeta map[string]json.RawMessage
	if err := json.Unmarshal(raw, &withMeta); err != nil {
		return "", fmt.Errorf("%w: \"inventory\": %v", ErrPayload, err)
	}
	if _, ok := withMeta["_meta"]; !ok {
		withMeta["_meta"] = json.RawMessage(`{"hostvars": {}}`)
	}
	data, err := json.Marshal(withMeta)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(inv, "hosts.json"), data, 0o600); err != nil {
		return "", err
	}
	script := filepath.Join(inv, "hosts")
	if err := os.WriteFile(script, []byte(inventoryScript), 0o700); err != nil {
		return "", err
	}
	return script, nil
}
