package command

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/jobengine/jobengine/engine/jobs"
)

// parseArgs returns the positional arguments of c, which must be exactly
// names, and applies flags written after them: urfave/cli stops parsing
// flags at the first argument, and `job show ID --json` should work.
func parseArgs(c *cli.Context, names ...string) ([]string, error) {
	in := c.Args().Slice()
	var pos []string
	for i := 0; i < len(in); i++ {
		a := in[i]
		if a == "--" {
			pos = append(pos, in[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			pos = append(pos, a)
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		f := lookupFlag(c, name)
		if f == nil {
			return nil, usagef("flag provided but not defined: %s", a)
		}
		if !hasVal {
			if _, ok := f.(*cli.BoolFlag); ok {
				val = "true"
			} else if i+1 < len(in) {
				i++
				val = in[i]
			} else {
				return nil, usagef("flag needs an argument: %s", a)
			}
		}
		// Set by the primary name: urfave/cli keeps a value per alias.
		if err := c.Set(f.Names()[0], val); err != nil {
			return nil, &UsageError{Err: flagValueError(f, val, err.Error())}
		}
	}
	noteJSON(c)
	if len(pos) != len(names) {
		want := "no arguments"
		if len(names) > 0 {
			want = strings.Join(names, " ")
		}
		return nil, usagef("%s: want %s, got %d argument(s)", commandPath(c), want, len(pos))
	}
	return pos, nil
}

// commandPath names the command as it was typed: "job list".
func commandPath(c *cli.Context) string {
	var names []string
	for _, l := range c.Lineage() {
		if l.Command != nil && l.Command.Name != "" && l.Command.Name != c.App.Name {
			names = append([]string{l.Command.Name}, names...)
		}
	}
	return strings.Join(names, " ")
}

// lookupFlag finds a flag of the command or of the app by any of its names.
func lookupFlag(c *cli.Context, name string) cli.Flag {
	for _, fs := range [][]cli.Flag{c.Command.Flags, c.App.Flags} {
		for _, f := range fs {
			for _, n := range f.Names() {
				if n == name {
					return f
				}
			}
		}
	}
	return nil
}

// goFlagValue matches the error of Go's flag package for a value it cannot
// parse; its reason for numbers and durations is only "parse error".
var goFlagValue = regexp.MustCompile(`^invalid (?:boolean )?value "(.*)" for (?:flag )?-{1,2}([^\s=:]+)(?:=\S*)?: (.*)$`)

// explainFlagError rewrites a flag parsing error of urfave/cli into one that
// says what was wrong with the value and what to type instead; other errors
// are returned as they are.
func explainFlagError(c *cli.Context, err error) error {
	m := goFlagValue.FindStringSubmatch(err.Error())
	if m == nil || c == nil || c.Command == nil {
		return err
	}
	f := lookupFlag(c, m[2])
	if f == nil {
		return err
	}
	return flagValueError(f, m[1], m[3])
}

// flagValueError says why val is no value for f and what to type instead.
func flagValueError(f cli.Flag, val, reason string) error {
	name := "--" + f.Names()[0]
	switch f.(type) {
	case *cli.DurationFlag:
		return fmt.Errorf("%s %q is not a duration: type a number with a unit, such as 30s, 5m or 1h30m", name, val)
	case *cli.IntFlag, *cli.Int64Flag, *cli.UintFlag, *cli.Uint64Flag:
		return fmt.Errorf("%s %q is not a whole number: type digits only, such as 10", name, val)
	case *cli.BoolFlag:
		return fmt.Errorf("%s=%s is not true or false: type %s alone, or %s=false", name, val, name, name)
	}
	return fmt.Errorf("%s %q: %s", name, val, reason)
}

// parseJobID parses a job id given on the command line.
func parseJobID(arg string) (id, uid string, err error) {
	id, uid, err = jobs.ParseID(arg)
	if err != nil {
		return "", "", usagef("%q is not a job id: type job/<uuid> or the bare uuid, as `job add` printed it", arg)
	}
	return id, uid, nil
}

// parseState parses the value of a --state flag.
func parseState(v string) (jobs.State, error) {
	st, err := jobs.ParseState(v)
	if err != nil {
		return "", usagef("--state %q is not a job state: type one of %s (any case)", v, stateNames())
	}
	return st, nil
}

// stateNames lists the job states for messages: "PENDING, QUEUED, … or CANCELED".
func stateNames() string {
	names := make([]string, len(jobs.States))
	for i, s := range jobs.States {
		names[i] = string(s)
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// withEnv gives every flag of a command an environment variable named after
// the command and the flag (JOBENGINE_JOB_LIST_LIMIT), unless it has one.
func withEnv(command string, flags ...cli.Flag) []cli.Flag {
	for _, f := range flags {
		env := "JOBENGINE_" + strings.ToUpper(strings.NewReplacer(" ", "_", "-", "_").Replace(command+" "+f.Names()[0]))
		switch f := f.(type) {
		case *cli.StringFlag:
			f.EnvVars = defaultEnv(f.EnvVars, env)
		case *cli.IntFlag:
			f.EnvVars = defaultEnv(f.EnvVars, env)
		case *cli.BoolFlag:
			f.EnvVars = defaultEnv(f.EnvVars, env)
		case *cli.DurationFlag:
			f.EnvVars = defaultEnv(f.EnvVars, env)
		case *cli.StringSliceFlag:
			f.EnvVars = defaultEnv(f.EnvVars, env)
		}
	}
	return flags
}

func defaultEnv(have []string, env string) []string {
	if len(have) > 0 {
		return have
	}
	return []string{env}
}
