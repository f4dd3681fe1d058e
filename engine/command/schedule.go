package command

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/jobengine/jobengine/engine/configstore"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/queue"
	"github.com/jobengine/jobengine/engine/schedule"
	"github.com/jobengine/jobengine/engine/schedules"
	"github.com/jobengine/jobengine/engine/template"
	"github.com/jobengine/jobengine/engine/workflow"
)

func init() {
	extraCommands = append(extraCommands, scheduleCommand)
}

// showNext is how many next occurrences `schedule show` prints.
const showNext = 5

// The `schedule` commands: schedules stored in the cluster, launched by the
// leader of `jobengine services`.
func scheduleCommand() *cli.Command {
	return &cli.Command{
		Name:  "schedule",
		Usage: "schedules stored in the cluster (cron or RRULE): create, list, show, edit, enable, disable, delete",
		Subcommands: []*cli.Command{
			scheduleCreateCommand(false), scheduleListCommand(), scheduleShowCommand(), scheduleCreateCommand(true),
			scheduleDeleteCommand(), scheduleEnableCommand(true), scheduleEnableCommand(false),
		},
	}
}

// scheduleFlags are the flags of create and edit.
func scheduleFlags(command string) []cli.Flag {
	return withEnv(command,
		&cli.StringFlag{Name: "cron", Usage: `a cron expression, 5 fields (or 6 with seconds), such as "0 9 * * 1"`},
		&cli.StringFlag{Name: "time-zone", Usage: "the IANA zone of --cron, such as Europe/Paris (UTC when not given)"},
		&cli.StringFlag{Name: "rrule", Usage: `an iCalendar rule with DTSTART, as AWX writes it: "DTSTART;TZID=Europe/Paris:20270104T090000 RRULE:FREQ=WEEKLY;BYDAY=MO"`},
		&cli.StringFlag{Name: "catch-up", Usage: "after an outage: last (launch the latest missed occurrence once, the default) or none"},
		&cli.StringFlag{Name: "template", Usage: "launch this job template"},
		&cli.StringFlag{Name: "workflow", Usage: "launch this workflow template"},
		&cli.StringFlag{Name: "action", Usage: "launch a job of this action (as job add)"},
		&cli.StringFlag{Name: "target", Usage: "job: href of the target resource"},
		&cli.IntFlag{Name: "priority", Value: queue.DefaultPriority, Usage: "job: 0–999, lower runs first"},
		&cli.StringFlag{Name: "payload", Usage: "job: the action's arguments, a JSON object, or @file (@- reads stdin)"},
		&cli.DurationFlag{Name: "timeout", Usage: "job: run time limit (90s, 5m); 0: the action's default"},
		&cli.StringFlag{Name: "unique-key", Usage: "job: skip an occurrence while a live job has this key"},
		&cli.StringSliceFlag{Name: "tag", Usage: "job: a tag; repeat for more"},
		&cli.StringSliceFlag{Name: "notify-started", Usage: "job: notification template to notify when it starts; repeat for more"},
		&cli.StringSliceFlag{Name: "notify-success", Usage: "job: notification template to notify when it succeeds; repeat for more"},
		&cli.StringSliceFlag{Name: "notify-failure", Usage: "job: notification template to notify when it fails; repeat for more"},
		&cli.StringFlag{Name: "values", Usage: "launch values, a JSON object or @file: a template's prompts; for a job, merged over its payload"},
		&cli.StringFlag{Name: "description", Usage: "what it is for"},
		&cli.BoolFlag{Name: "disabled", Usage: "create it disabled (enable it with schedule enable)"},
		jsonFlag("print the schedule as JSON"),
	)
}

// scheduleCreateCommand is `create` (or `edit`, which changes only what
// its flags give).
func scheduleCreateCommand(edit bool) *cli.Command {
	name, usage := "create", "create a schedule: --cron or --rrule, and --template, --workflow or --action"
	if edit {
		name, usage = "edit", "change a schedule: only what the flags give changes"
	}
	return &cli.Command{
		Name:      name,
		Usage:     usage,
		ArgsUsage: "NAME",
		Flags:     scheduleFlags("schedule " + name),
		Action: func(c *cli.Context) error {
			args, err := parseArgs(c, "NAME")
			if err != nil {
				return err
			}
			if edit && c.IsSet("disabled") {
				return usagef("schedule edit: use schedule enable or schedule disable")
			}
			if !schedules.ValidName(args[0]) {
				return usagef("%q is not a schedule name: type 1–64 letters, digits, '.', '_' or '-', such as nightly-report", args[0])
			}
			sc := &schedules.Schedule{Name: args[0], Enabled: !c.Bool("disabled")}
			if !edit {
				// Bad input is refused before any server is asked.
				if err := applyScheduleFlags(c, sc); err != nil {
					return err
				}
			}
			cl, err := openClient(c)
			if err != nil {
				return err
			}
			defer cl.Close()
			st := schedules.NewStore(cl.conn)
			var ver int32
			if edit {
				if sc, ver, err = st.Get(cl.ctx, args[0]); err != nil {
					return scheduleFail(cl, err)
				}
				if err := applyScheduleFlags(c, sc); err != nil {
					return err
				}
			}
			if err := checkScheduleLaunch(cl, sc); err != nil {
				return err
			}
			if edit {
				err = st.Update(cl.ctx, sc, ver)
			} else {
				err = st.Create(cl.ctx, sc)
			}
			if err != nil {
				return scheduleFail(cl, err)
			}
			if c.Bool("json") {
				state, _, _ := st.ReadState(cl.ctx, sc.Name)
				return writeJSON(c.App.Writer, scheduleView(sc, state, time.Now()))
			}
			verb := "created"
			if edit {
				verb = "changed"
			}
			fmt.Fprintf(c.App.Writer, "schedule %s %s; next: %s\n", sc.Name, verb, nextText(sc, time.Now()))
			return nil
		},
	}
}

// applyScheduleFlags sets what the flags give on sc.
func applyScheduleFlags(c *cli.Context, sc *schedules.Schedule) error {
	switch {
	case c.IsSet("cron") && c.IsSet("rrule"):
		return usagef("give --cron or --rrule, not both")
	case c.IsSet("rrule") && c.IsSet("time-zone"):
		return usagef("--time-zone applies to --cron; an --rrule names its zone in DTSTART (DTSTART;TZID=Europe/Paris:…)")
	case c.IsSet("cron"):
		sc.Cron, sc.RRule, sc.TimeZone = c.String("cron"), "", c.String("time-zone")
	case c.IsSet("rrule"):
		sc.RRule, sc.Cron, sc.TimeZone = c.String("rrule"), "", ""
	case c.IsSet("time-zone"):
		sc.TimeZone = c.String("time-zone")
	}
	if sc.Cron == "" && sc.RRule == "" {
		return usagef("say when: --cron \"0 9 * * 1\" --time-zone Europe/Paris, or --rrule \"DTSTART;TZID=Europe/Paris:20270104T090000 RRULE:FREQ=WEEKLY;BYDAY=MO\"")
	}
	if c.IsSet("catch-up") {
		cu, err := schedule.ParseCatchUp(c.String("catch-up"))
		if err != nil {
			return usagef("--catch-up %q: type last (launch the latest missed occurrence once) or none (skip them)", c.String("catch-up"))
		}
		sc.CatchUp = cu
	}
	if c.IsSet("description") {
		sc.Description = c.String("description")
	}
	jobFlags := []string{"target", "priority", "payload", "timeout", "unique-key", "tag", "notify-started", "notify-success", "notify-failure"}
	given := 0
	for _, f := range []string{"template", "workflow", "action"} {
		if c.IsSet(f) {
			given++
		}
	}
	switch {
	case given > 1:
		return usagef("give one of --template, --workflow and --action")
	case c.IsSet("template") || c.IsSet("workflow"):
		for _, f := range jobFlags {
			if c.IsSet(f) {
				return usagef("--%s is a setting of a job (--action); a template has its own", f)
			}
		}
		sc.Launch.Template, sc.Launch.Workflow, sc.Launch.Job = c.String("template"), c.String("workflow"), nil
	case c.IsSet("action"):
		sc.Launch.Template, sc.Launch.Workflow, sc.Launch.Job = "", "", &schedules.JobSpec{Action: c.String("action")}
	}
	if sc.Launch.Template == "" && sc.Launch.Workflow == "" && sc.Launch.Job == nil {
		return usagef("say what to launch: --template NAME, --workflow NAME, or --action NAME for a job")
	}
	if j := sc.Launch.Job; j != nil {
		if c.IsSet("target") {
			j.Target = c.String("target")
		}
		if c.IsSet("priority") {
			p := c.Int("priority")
			if p < queue.MinPriority || p > queue.MaxPriority {
				return usagef("--priority %d is out of range: type %d–%d (lower runs first)", p, queue.MinPriority, queue.MaxPriority)
			}
			j.Priority = &p
		}
		if c.IsSet("payload") {
			p, err := readPayload(c.String("payload"))
			if err != nil {
				return err
			}
			j.Payload = p
		}
		if c.IsSet("timeout") {
			if c.Duration("timeout") < 0 {
				return usagef("--timeout %s is negative: type a duration such as 90s, or 0 for the action's default", c.Duration("timeout"))
			}
			j.Timeout = ""
			if c.Duration("timeout") > 0 {
				j.Timeout = c.Duration("timeout").String()
			}
		}
		if c.IsSet("unique-key") {
			j.UniqueKey = c.String("unique-key")
		}
		if c.IsSet("tag") {
			j.Tags = c.StringSlice("tag")
		}
		for ev, f := range map[jobs.NotifyEvent]string{jobs.NotifyStarted: "notify-started", jobs.NotifySuccess: "notify-success", jobs.NotifyFailure: "notify-failure"} {
			if c.IsSet(f) {
				var n jobs.Notifications
				n.Add(ev, c.StringSlice(f)...)
				switch ev {
				case jobs.NotifyStarted:
					j.Notifications.Started = n.Started
				case jobs.NotifySuccess:
					j.Notifications.Success = n.Success
				default:
					j.Notifications.Failure = n.Failure
				}
			}
		}
	}
	if c.IsSet("values") {
		b, err := readArg("--values", c.String("values"), 4*jobs.MaxPayloadBytes)
		if err != nil {
			return err
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(b, &obj); err != nil || obj == nil {
			return usagef(`--values is not a JSON object: type one such as '{"limit": "web"}'`)
		}
		sc.Launch.Values, _ = json.Marshal(obj)
	}
	check := *sc
	if check.UID == "" {
		check.UID = "00000000-0000-4000-8000-000000000000" // given by the store
	}
	if err := check.Validate(); err != nil {
		return &UsageError{Err: err}
	}
	return nil
}

// checkScheduleLaunch refuses a schedule of a template or workflow
// template that does not exist, as the API does: it would only fail at
// each occurrence.
func checkScheduleLaunch(cl *client, sc *schedules.Schedule) error {
	var err error
	switch {
	case sc.Launch.Template != "":
		_, _, err = template.NewStore(cl.conn, cl.log.Named("template")).Get(cl.ctx, sc.Launch.Template)
		if errors.Is(err, configstore.ErrNotFound) {
			return usagef("--template %s: no such job template (see 'jobengine template list')", sc.Launch.Template)
		}
	case sc.Launch.Workflow != "":
		_, _, err = workflow.NewStore(cl.conn, cl.log.Named("workflow")).Get(cl.ctx, sc.Launch.Workflow)
		if errors.Is(err, configstore.ErrNotFound) {
			return usagef("--workflow %s: no such workflow template (see 'jobengine workflow list')", sc.Launch.Workflow)
		}
	}
	if err != nil {
		return cl.fail(err, "")
	}
	return nil
}

// scheduleFail turns a schedule store error into what the user sees.
func scheduleFail(cl *client, err error) error {
	if errors.Is(err, schedules.ErrInvalid) {
		return &UsageError{Err: err}
	}
	return cl.fail(err, "")
}

// occurrence is an occurrence as list and show print it.
type occurrence struct {
	UTC  string `json:"utc"`
	Zone string `json:"zone"`
}

// scheduleJSON is a schedule as list --json and show --json print it.
type scheduleJSON struct {
	*schedules.Schedule
	Rule  string           `json:"rule"`
	Next  []occurrence     `json:"next"`
	State *schedules.State `json:"state,omitempty"`
}

func scheduleView(sc *schedules.Schedule, st schedules.State, now time.Time) scheduleJSON {
	v := scheduleJSON{Schedule: sc, Rule: sc.Rule(), Next: []occurrence{}}
	if st.UID == sc.UID && st.Tick != "" {
		v.State = &st
	}
	if sc.Enabled {
		for _, t := range sc.Next(now, showNext) {
			v.Next = append(v.Next, occurrence{UTC: t.UTC().Format(time.RFC3339), Zone: t.Format("2006-01-02 15:04:05 MST")})
		}
	}
	return v
}

// nextText is the next occurrence, in the schedule's zone and UTC.
func nextText(sc *schedules.Schedule, now time.Time) string {
	if !sc.Enabled {
		return "none (disabled)"
	}
	next := sc.Next(now, 1)
	if len(next) == 0 {
		return "none (the rule has ended)"
	}
	return next[0].Format("2006-01-02 15:04:05 MST") + " (" + next[0].UTC().Format(time.RFC3339) + ")"
}

// launchText says what a schedule launches.
func launchText(sc *schedules.Schedule) string {
	if sc.Launch.Template != "" {
		return "template " + sc.Launch.Template
	}
	if sc.Launch.Workflow != "" {
		return "workflow " + sc.Launch.Workflow
	}
	s := "job " + sc.Launch.Job.Action
	if sc.Launch.Job.Target != "" {
		s += " on " + sc.Launch.Job.Target
	}
	return s
}

func scheduleListCommand() *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "list schedules with their rule, what they launch, their next and last run",
		Flags: withEnv("schedule list", jsonFlag("print JSON")),
		Action: func(c *cli.Context) error {
			if _, err := parseArgs(c); err != nil {
				return err
			}
			cl, err := openClient(c)
			if err != nil {
				return err
			}
			defer cl.Close()
			st := schedules.NewStore(cl.conn)
			list, problems, err := st.List(cl.ctx)
			if err != nil {
				return cl.fail(err, "")
			}
			now := time.Now()
			views := make([]scheduleJSON, 0, len(list))
			for _, sc := range list {
				state, _, err := st.ReadState(cl.ctx, sc.Name)
				if err != nil {
					return cl.fail(err, "")
				}
				views = append(views, scheduleView(sc, state, now))
			}
			return printSchedules(c, views, problems, now)
		},
	}
}

// printSchedules prints schedules as `schedule list` does.
func printSchedules(c *cli.Context, views []scheduleJSON, problems []schedules.Problem, now time.Time) error {
	if c.Bool("json") {
		return writeJSON(c.App.Writer, struct {
			Schedules []scheduleJSON      `json:"schedules"`
			Problems  []schedules.Problem `json:"problems,omitempty"`
		}{views, problems})
	}
	tw := newTable(c.App.Writer)
	fmt.Fprintln(tw, "NAME\tENABLED\tRULE\tLAUNCHES\tNEXT\tLAST")
	for _, v := range views {
		last := "-"
		if v.State != nil {
			last = v.State.Tick
			if v.State.Error != "" {
				last += " (refused)"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", v.Name, yesNo(v.Enabled), v.Rule, launchText(v.Schedule), nextText(v.Schedule, now), last)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range problems {
		fmt.Fprintf(c.App.ErrWriter, "jobengine: stored schedule %s is not valid: %s\n", p.Name, p.Err)
	}
	return nil
}

func scheduleShowCommand() *cli.Command {
	return &cli.Command{
		Name:      "show",
		Usage:     "show a schedule: its rule, what it launches, its next 5 occurrences (its zone and UTC), its last run",
		ArgsUsage: "NAME",
		Flags:     withEnv("schedule show", jsonFlag("print JSON")),
		Action: func(c *cli.Context) error {
			args, err := parseArgs(c, "NAME")
			if err != nil {
				return err
			}
			cl, err := openClient(c)
			if err != nil {
				return err
			}
			defer cl.Close()
			st := schedules.NewStore(cl.conn)
			sc, _, err := st.Get(cl.ctx, args[0])
			if err != nil {
				return scheduleFail(cl, err)
			}
			state, _, err := st.ReadState(cl.ctx, sc.Name)
			if err != nil {
				return cl.fail(err, "")
			}
			v := scheduleView(sc, state, time.Now())
			return printSchedule(c, v)
		},
	}
}

// printSchedule prints a schedule as `schedule show` does.
func printSchedule(c *cli.Context, v scheduleJSON) error {
	sc := v.Schedule
	if c.Bool("json") {
		return writeJSON(c.App.Writer, v)
	}
	tw := newTable(c.App.Writer)
	row := func(k, val string) {
		if val != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", k, val)
		}
	}
	row("name", sc.Name)
	row("description", sc.Description)
	row("enabled", yesNo(sc.Enabled))
	row("rule", v.Rule)
	cu := string(sc.CatchUp)
	if cu == "" {
		cu = string(schedule.CatchUpLast)
	}
	row("catch-up", cu)
	row("launches", launchText(sc))
	if len(sc.Launch.Values) > 0 {
		row("values", string(sc.Launch.Values))
	}
	if j := sc.Launch.Job; j != nil && len(j.Payload) > 0 {
		row("payload", oneLine(string(j.Payload)))
	}
	if v.State != nil {
		row("last", v.State.Tick+" by "+v.State.By)
		row("last job", v.State.Job)
		row("last error", oneLine(v.State.Error))
	}
	if len(v.Next) == 0 {
		row("next", nextText(sc, time.Now()))
	}
	for i, n := range v.Next {
		k := ""
		if i == 0 {
			k = "next"
		}
		if k == "" {
			fmt.Fprintf(tw, "\t%s  (%s)\n", n.Zone, n.UTC)
		} else {
			fmt.Fprintf(tw, "%s:\t%s  (%s)\n", k, n.Zone, n.UTC)
		}
	}
	return tw.Flush()
}

func scheduleDeleteCommand() *cli.Command {
	return &cli.Command{
		Name:      "delete",
		Usage:     "delete a schedule (the jobs it launched stay)",
		ArgsUsage: "NAME",
		Action: func(c *cli.Context) error {
			args, err := parseArgs(c, "NAME")
			if err != nil {
				return err
			}
			cl, err := openClient(c)
			if err != nil {
				return err
			}
			defer cl.Close()
			if err := schedules.NewStore(cl.conn).Delete(cl.ctx, args[0]); err != nil {
				return scheduleFail(cl, err)
			}
			fmt.Fprintf(c.App.Writer, "schedule %s deleted\n", args[0])
			return nil
		},
	}
}

// scheduleEnableCommand is `enable` (or `disable`).
func scheduleEnableCommand(enable bool) *cli.Command {
	name, usage := "enable", "enable a schedule: it launches from its next occurrence on (nothing is made up)"
	if !enable {
		name, usage = "disable", "disable a schedule: it launches nothing until enabled again"
	}
	return &cli.Command{
		Name:      name,
		Usage:     usage,
		ArgsUsage: "NAME",
		Action: func(c *cli.Context) error {
			args, err := parseArgs(c, "NAME")
			if err != nil {
				return err
			}
			cl, err := openClient(c)
			if err != nil {
				return err
			}
			defer cl.Close()
			st := schedules.NewStore(cl.conn)
			for range 5 {
				sc, ver, err := st.Get(cl.ctx, args[0])
				if err != nil {
					return scheduleFail(cl, err)
				}
				sc.Enabled = enable
				err = st.Update(cl.ctx, sc, ver)
				if errors.Is(err, schedules.ErrConflict) {
					continue
				}
				if err != nil {
					return scheduleFail(cl, err)
				}
				fmt.Fprintf(c.App.Writer, "schedule %s %sd; next: %s\n", sc.Name, name, nextText(sc, time.Now()))
				return nil
			}
			return fmt.Errorf("schedule %s kept changing; try again", args[0])
		},
	}
}
