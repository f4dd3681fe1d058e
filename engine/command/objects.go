package command

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/jobengine/jobengine/engine/configstore"
	"github.com/jobengine/jobengine/engine/inventory"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/project"
	"github.com/jobengine/jobengine/engine/template"
)

func init() {
	extraCommands = append(extraCommands, inventoryCommand, projectCommand, templateCommand)
}

// objects is what the inventory, project and template commands work with:
// the job store's client and the configuration stores on its session.
type objects struct {
	*client
	inv      *inventory.Store
	projects *project.Store
	tmpls    *template.Store
	launcher *template.Launcher
}

// openObjects connects and opens the configuration stores. Callers check
// their input first: bad input never needs a server.
func openObjects(c *cli.Context) (*objects, error) {
	cl, err := openClient(c)
	if err != nil {
		return nil, err
	}
	o := &objects{client: cl}
	o.inv = inventory.NewStore(cl.conn, inventory.Config{Logger: cl.log.Named("inventory"), Live: cl.jobLive})
	o.projects = project.NewStore(cl.conn, cl.log.Named("project"))
	o.tmpls = template.NewStore(cl.conn, cl.log.Named("template"))
	o.launcher = &template.Launcher{Jobs: cl.store, Templates: o.tmpls, Inventories: o.inv, Logger: cl.log.Named("launch")}
	return o, nil
}

// jobLive reports whether the job with this uuid still needs what it
// pinned: it exists in ZooKeeper and is not final.
func (cl *client) jobLive(ctx context.Context, uid string) (bool, error) {
	j, _, err := cl.store.Get(ctx, "job/"+uid)
	if errors.Is(err, jobs.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return !j.State.Final(), nil
}

// failObj turns an error of the configuration stores into what a user
// sees: bad input is a usage error (exit 2); a missing or changed object,
// a bad object in ZooKeeper or an object in use is a failure (exit 1).
func (cl *client) failObj(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, configstore.ErrCorrupt):
		return fmt.Errorf("%w (fix or delete it; see docs/templates.md)", err)
	case errors.Is(err, configstore.ErrInvalid), errors.Is(err, jobs.ErrInvalid):
		return &UsageError{Err: err}
	case errors.Is(err, configstore.ErrNotFound), errors.Is(err, configstore.ErrExists),
		errors.Is(err, configstore.ErrConflict), errors.Is(err, inventory.ErrInUse), errors.Is(err, project.ErrInUse), errors.Is(err, template.ErrCannotRelaunch):
		return err
	}
	return cl.fail(err, "")
}

// reportBad prints the objects a listing left out because they are bad.
func reportBad(w io.Writer, bad []error) {
	for _, err := range bad {
		fmt.Fprintf(w, "jobengine: warning: left out: %v\n", err)
	}
}

// checkName refuses a bad object name before anything is contacted.
func checkName(kind, name string) error {
	if err := configstore.ValidName(kind, name); err != nil {
		return &UsageError{Err: err}
	}
	return nil
}

// readObjectFlag reads a flag holding a JSON object, or @file (@- reads
// stdin), and returns it compacted.
func readObjectFlag(flag, v string, max int) (json.RawMessage, error) {
	b, err := readArg("--"+flag, v, 4*max)
	if err != nil {
		return nil, err
	}
	b = bytes.TrimSpace(b)
	if len(b) > max {
		return nil, usagef("--%s: %d bytes is over the %d-byte limit", flag, len(b), max)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil || obj == nil {
		return nil, usagef("--%s must be a JSON object (e.g. '{\"key\": \"value\"}') or @file", flag)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return nil, usagef("--%s is not valid JSON: %v", flag, err)
	}
	return buf.Bytes(), nil
}

// readFile reads FILE, or stdin for "-".
func readFile(name string, max int64) ([]byte, error) {
	var r io.Reader
	if name == "-" {
		r = os.Stdin
	} else {
		f, err := os.Open(name)
		if err != nil {
			return nil, usagef("reading %s: %v", name, err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, usagef("reading %s: %v", name, err)
	}
	if int64(len(b)) > max {
		return nil, usagef("%s is over the %d-byte limit", name, max)
	}
	return b, nil
}

// nonEmpty drops empty strings (an empty value clears a list flag).
func nonEmpty(in []string) []string {
	var out []string
	for _, s := range in {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
