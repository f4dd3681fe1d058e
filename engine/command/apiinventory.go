package command

// The inventory commands that change or print inventories, through the
// API: the same arguments, checks and output as their ZooKeeper forms.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/jobengine/jobengine/engine/inventory"
)

func init() {
	apiActions["inventory create"] = apiInventoryCreate
	apiActions["inventory import"] = apiInventoryImport
	apiActions["inventory script"] = apiInventoryScript
	apiActions["inventory hosts"] = apiInventoryHosts
}

// apiInventoryInput is the body of POST /inventories: the head of an
// inventory (its content comes with an import).
type apiInventoryInput struct {
	Name           string            `json:"name"`
	Kind           inventory.Kind    `json:"kind"`
	Description    string            `json:"description,omitempty"`
	InstanceGroups []string          `json:"instance-groups,omitempty"`
	Filter         *inventory.Filter `json:"filter,omitempty"`
}

// apiImported is the answer of POST /inventories/{name}/import.
type apiImported struct {
	Inventory *inventory.Inventory `json:"inventory"`
	Created   bool                 `json:"created"`
}

// apiImport sends data (checked as Ansible's JSON inventory format) as
// the content of the inventory name.
func apiImport(c *cli.Context, cl *apiClient, name string, data []byte) (apiImported, error) {
	var v apiImported
	path := "/inventories/" + url.PathEscape(name) + "/import"
	if err := cl.do(c.Context, http.MethodPost, path, nil, json.RawMessage(data), &v); err != nil {
		return v, err
	}
	if v.Inventory == nil {
		return v, fmt.Errorf("%w: POST %s: no inventory in the answer", errAPI, path)
	}
	return v, nil
}

func apiInventoryCreate(c *cli.Context) error {
	inv, content, data, err := newInventoryFromFlags(c)
	if err != nil {
		return err
	}
	cl, err := openAPI(c, true)
	if err != nil {
		return err
	}
	in := apiInventoryInput{Name: inv.Name, Kind: inv.Kind, Description: inv.Description, InstanceGroups: inv.InstanceGroups, Filter: inv.Filter}
	var made inventory.Inventory
	if err := cl.do(c.Context, http.MethodPost, "/inventories", nil, &in, &made); err != nil {
		return err
	}
	if content != nil {
		// The API creates the head, then imports the content: when the
		// import fails, the empty inventory is deleted again, so that
		// nothing is left half-made.
		v, err := apiImport(c, cl, inv.Name, data)
		if err != nil {
			derr := cl.do(c.Context, http.MethodDelete, "/inventories/"+url.PathEscape(inv.Name), nil, nil, nil)
			if derr != nil {
				return errors.Join(err, fmt.Errorf("inventory %s was created empty and could not be deleted again: %w", inv.Name, derr))
			}
			return err
		}
		made = *v.Inventory
	}
	fmt.Fprintf(c.App.Writer, "inventory %s created (%s)\n", printable(made.Name), countsText(&made))
	return nil
}

func apiInventoryImport(c *cli.Context) error {
	args, err := parseArgs(c, "NAME", "FILE")
	if err != nil {
		return err
	}
	if err := checkName("inventory", args[0]); err != nil {
		return err
	}
	data, err := readFile(args[1], inventory.MaxImportBytes)
	if err != nil {
		return err
	}
	if _, err := inventory.ParseAnsible(data); err != nil {
		return usagef("%s: %v", args[1], err)
	}
	cl, err := openAPI(c, true)
	if err != nil {
		return err
	}
	v, err := apiImport(c, cl, args[0], data)
	if err != nil {
		return err
	}
	verb := "imported"
	if v.Created {
		verb = "created"
	}
	fmt.Fprintf(c.App.Writer, "inventory %s %s (%s)\n", printable(v.Inventory.Name), verb, countsText(v.Inventory))
	return nil
}

func apiInventoryScript(c *cli.Context) error {
	name, q, err := scriptQuery(c)
	if err != nil {
		return err
	}
	cl, err := openAPI(c, true)
	if err != nil {
		return err
	}
	path := "/inventories/" + url.PathEscape(name) + "/script"
	resp, cancel, err := cl.request(c.Context, http.MethodGet, path, q, nil, false)
	if err != nil {
		return err
	}
	defer cancel()
	defer resp.Body.Close()
	_, err = io.Copy(c.App.Writer, io.LimitReader(resp.Body, 4*inventory.MaxImportBytes))
	return err
}

// scriptQuery checks the argument and flags of `inventory script` as its
// ZooKeeper form does and turns them into the query of GET
// /inventories/{name}/script.
func scriptQuery(c *cli.Context) (string, url.Values, error) {
	args, err := parseArgs(c, "NAME")
	if err != nil {
		return "", nil, err
	}
	if err := checkName("inventory", args[0]); err != nil {
		return "", nil, err
	}
	q := url.Values{}
	if c.IsSet("slice") {
		k, n, err := inventory.ParseSlice(c.String("slice"))
		if err != nil {
			return "", nil, usagef("--slice: %v", err)
		}
		q.Set("subset", "slice"+strconv.Itoa(k)+"of"+strconv.Itoa(n))
	}
	if _, err := inventory.ParseLimit(c.String("limit")); err != nil {
		return "", nil, usagef("--limit: %v", err)
	}
	if c.Bool("all") && (c.IsSet("slice") || c.IsSet("limit")) {
		return "", nil, usagef("--all prints every host; it does not go with --slice or --limit, which select enabled hosts")
	}
	if l := c.String("limit"); l != "" {
		q.Set("limit", l)
	}
	if c.Bool("hostvars") {
		q.Set("hostvars", "true")
	}
	if c.Bool("all") {
		q.Set("disabled", "true")
	}
	return args[0], q, nil
}

// apiHostView is a host as GET /inventories/{name}/hosts lists it.
type apiHostView struct {
	inventory.Host
	Groups []string `json:"groups"`
}

// apiEnabledHost is the body of PATCH /inventories/{name}/hosts/{host}.
type apiEnabledHost struct {
	Enabled bool `json:"enabled"`
}

func apiInventoryHosts(c *cli.Context) error {
	name, cl, err := apiNameArg(c, "inventory")
	if err != nil {
		return err
	}
	enable, disable, limit, err := hostsFlags(c)
	if err != nil {
		return err
	}
	path := "/inventories/" + url.PathEscape(name)
	// Ordered by name, as the inventory holds its hosts.
	byName := url.Values{"order": {"name"}}
	list, err := apiList[apiHostView](c.Context, cl, path+"/hosts", byName)
	if err != nil {
		return err
	}
	if len(enable)+len(disable) > 0 {
		// All of them or none, as the ZooKeeper form: an unknown host is
		// refused before any host changes.
		known := make(map[string]bool, len(list))
		for _, h := range list {
			known[h.Name] = true
		}
		for _, h := range append(append([]string{}, enable...), disable...) {
			if !known[h] {
				return fmt.Errorf("inventory %s has no host %s: nothing changed", name, h)
			}
		}
		for _, ch := range []struct {
			hosts []string
			on    bool
		}{{enable, true}, {disable, false}} {
			for _, h := range ch.hosts {
				if err := cl.do(c.Context, http.MethodPatch, path+"/hosts/"+url.PathEscape(h), nil, &apiEnabledHost{Enabled: ch.on}, nil); err != nil {
					return err
				}
			}
		}
		if list, err = apiList[apiHostView](c.Context, cl, path+"/hosts", byName); err != nil {
			return err
		}
	}
	var keep map[string]bool
	if limit != nil {
		// The API applies the pattern as a job's --limit does: the hosts
		// of the inventory script are those it selects.
		resp, cancel, err := cl.request(c.Context, http.MethodGet, path+"/script", url.Values{"limit": {c.String("limit")}}, nil, false)
		if err != nil {
			return err
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, 4*inventory.MaxImportBytes))
		resp.Body.Close()
		cancel()
		if err != nil {
			return err
		}
		sel, err := inventory.ParseAnsible(data)
		if err != nil {
			return fmt.Errorf("%w: GET %s/script: %v", errAPI, path, err)
		}
		keep = make(map[string]bool, len(sel.Hosts))
		for _, h := range sel.Hosts {
			keep[h.Name] = true
		}
	}
	hosts := make([]inventory.Host, 0, len(list))
	groups := make(map[string][]string, len(list))
	for _, h := range list {
		if keep != nil && !keep[h.Name] {
			continue
		}
		hosts = append(hosts, h.Host)
		if len(h.Groups) > 0 {
			groups[h.Name] = h.Groups
		}
	}
	return printHosts(c, hosts, groups)
}
