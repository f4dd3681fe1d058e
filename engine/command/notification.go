package command

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/notify"
)

func init() {
	extraCommands = append(extraCommands, notificationCommand)
}

// The `notification` commands: templates (create, list, show, delete,
// test), where they are attached (attach, detach), and the notices whose
// delivery kept failing (list --failed, retry).
func notificationCommand() *cli.Command {
	return &cli.Command{
		Name:  "notification",
		Usage: "notification templates (webhook, e-mail, command): create, attach to actions, test, and what failed",
		Subcommands: []*cli.Command{
			notificationCreateCommand(), notificationListCommand(), notificationShowCommand(), notificationDeleteCommand(),
			notificationTestCommand(), notificationAttachCommand(true), notificationAttachCommand(false), notificationRetryCommand(),
		},
	}
}

func notificationCreateCommand() *cli.Command {
	return &cli.Command{
		Name:      "create",
		Usage:     "create a notification template: --webhook URL, --email with --smtp-host, or --command PROGRAM",
		ArgsUsage: "NAME",
		Description: "A webhook POSTs the event as JSON, signed with HMAC-SHA256 of the timestamp and body (X-Jobengine-Signature)\n" +
			"with the secret read from --secret-file (required). An e-mail goes through --smtp-host; its password, when\n" +
			"--username is set, is read from --secret-file. A command runs PROGRAM (an absolute path, no shell) with\n" +
			"--arg arguments and the event as JSON on its stdin. Secrets are read from a file or stdin (-), never from\n" +
			"a flag, and never shown.",
		Flags: withEnv("notification create",
			&cli.StringFlag{Name: "webhook", Usage: "webhook: the http(s) URL to POST to"},
			&cli.StringSliceFlag{Name: "header", Usage: "webhook: a header NAME=VALUE to add (shown by show: no credentials here); repeat for more"},
			&cli.BoolFlag{Name: "email", Usage: "e-mail through an SMTP server"},
			&cli.StringFlag{Name: "smtp-host", Usage: "e-mail: the SMTP server"},
			&cli.IntFlag{Name: "smtp-port", Value: 587, Usage: "e-mail: its port"},
			&cli.StringFlag{Name: "starttls", Value: string(notify.StartTLSRequired), Usage: "e-mail: required, optional (when offered) or off (a local relay)"},
			&cli.StringFlag{Name: "ca-file", Usage: "e-mail: PEM file of the CAs to trust for the server (on the sending hosts)"},
			&cli.StringFlag{Name: "username", Usage: "e-mail: log in as this user (AUTH PLAIN), with the password of --secret-file"},
			&cli.StringFlag{Name: "from", Usage: "e-mail: the sender address"},
			&cli.StringSliceFlag{Name: "to", Usage: "e-mail: a recipient; repeat for more"},
			&cli.StringFlag{Name: "command", Usage: "command: the program to run, an absolute path"},
			&cli.StringSliceFlag{Name: "arg", Usage: "command: an argument; repeat for more, in order"},
			&cli.StringFlag{Name: "secret-file", Usage: "file holding the webhook's signing key or the SMTP password (- reads stdin)"},
			&cli.DurationFlag{Name: "timeout", Value: notify.DefaultTimeout, Usage: "bound of one delivery attempt (at most 5m)"},
			&cli.StringFlag{Name: "description", Usage: "what it is for"},
		),
		Action: func(c *cli.Context) error {
			t, secret, err := createFromFlags(c)
			if err != nil {
				return err
			}
			cl, err := openClient(c)
			if err != nil {
				return err
			}
			defer cl.Close()
			if err := notify.NewStore(cl.conn).Create(cl.ctx, *t, secret); err != nil {
				return notifyFail(cl, err)
			}
			fmt.Fprintf(c.App.Writer, "notification template %s created\n", t.Name)
			return nil
		},
	}
}

// createFromFlags reads the argument and flags of notification create: a
// valid template and its secret.
func createFromFlags(c *cli.Context) (*notify.Template, []byte, error) {
	args, err := parseArgs(c, "NAME")
	if err != nil {
		return nil, nil, err
	}
	t, err := templateFromFlags(c, args[0])
	if err != nil {
		return nil, nil, err
	}
	var secret []byte
	if f := c.String("secret-file"); f != "" {
		if secret, err = readSecret(c, f); err != nil {
			return nil, nil, err
		}
	}
	if err := t.Validate(); err != nil {
		return nil, nil, &UsageError{Err: err}
	}
	return t, secret, nil
}

// templateFromFlags builds a template from the create flags.
func templateFromFlags(c *cli.Context, name string) (*notify.Template, error) {
	kinds := 0
	for _, k := range []bool{c.IsSet("webhook"), c.Bool("email"), c.IsSet("command")} {
		if k {
			kinds++
		}
	}
	if kinds != 1 {
		return nil, usagef("notification create: give one of --webhook URL, --email or --command PROGRAM")
	}
	if !jobs.ValidNotificationName(name) {
		return nil, usagef("%q is not a notification name: type 1–64 letters, digits, '.', '_' or '-', such as ops-hook", name)
	}
	t := &notify.Template{Name: name, Description: c.String("description"), Timeout: notify.Duration(c.Duration("timeout"))}
	switch {
	case c.IsSet("webhook"):
		t.Kind = notify.Webhook
		t.Webhook = &notify.WebhookSpec{URL: c.String("webhook")}
		for _, h := range c.StringSlice("header") {
			k, v, ok := strings.Cut(h, "=")
			if !ok || strings.TrimSpace(k) == "" {
				return nil, usagef("--header %q: type NAME=VALUE, such as X-Team=ops", h)
			}
			if t.Webhook.Headers == nil {
				t.Webhook.Headers = map[string]string{}
			}
			t.Webhook.Headers[strings.TrimSpace(k)] = v
		}
		if !c.IsSet("secret-file") {
			return nil, usagef("a webhook signs its requests: give --secret-file with the signing key (- reads it from stdin)")
		}
	case c.Bool("email"):
		t.Kind = notify.Email
		t.Email = &notify.EmailSpec{Host: c.String("smtp-host"), Port: c.Int("smtp-port"), StartTLS: notify.StartTLS(c.String("starttls")),
			CAFile: c.String("ca-file"), Username: c.String("username"), From: c.String("from"), To: c.StringSlice("to")}
		if t.Email.Username != "" && !c.IsSet("secret-file") {
			return nil, usagef("--username %s: give the password with --secret-file (- reads it from stdin)", t.Email.Username)
		}
	default:
		t.Kind = notify.Command
		t.Command = &notify.CommandSpec{Argv: append([]string{c.String("command")}, c.StringSlice("arg")...)}
	}
	return t, nil
}

// readSecret reads a secret from a file, or stdin for "-".
func readSecret(c *cli.Context, f string) ([]byte, error) {
	var r io.Reader
	if f == "-" {
		r = os.Stdin
	} else {
		fh, err := os.Open(f)
		if err != nil {
			return nil, usagef("--secret-file: %v", err)
		}
		defer fh.Close()
		r = fh
	}
	b, err := io.ReadAll(io.LimitReader(r, notify.MaxSecretBytes+2))
	if err != nil {
		return nil, usagef("--secret-file: %v", err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return nil, usagef("--secret-file %s is empty: put the secret in it, on one line", f)
	}
	return []byte(s), nil
}

// notifyFail turns a notification store error into what the user sees.
func notifyFail(cl *client, err error) error {
	if errors.Is(err, notify.ErrInvalid) {
		return &UsageError{Err: err}
	}
	return cl.fail(err, "")
}

// templateRow is a template as list and show print it (never its secret).
type templateRow struct {
	*notify.Template
	Attached []string `json:"attached,omitempty"`
}

func notificationListCommand() *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "list notification templates, or with --failed the notifications whose delivery kept failing",
		Flags: withEnv("notification list",
			&cli.BoolFlag{Name: "failed", Usage: "list the parked notifications (their error; `notification retry` sends them again)"},
			&cli.BoolFlag{Name: "pending", Usage: "list the notifications waiting for delivery"},
			jsonFlag("print JSON"),
		),
		Action: func(c *cli.Context) error {
			if _, err := parseArgs(c); err != nil {
				return err
			}
			cl, err := openClient(c)
			if err != nil {
				return err
			}
			defer cl.Close()
			st := notify.NewStore(cl.conn)
			if c.Bool("failed") || c.Bool("pending") {
				list := st.Failed
				if c.Bool("pending") {
					list = st.Pending
				}
				recs, err := list(cl.ctx)
				if err != nil {
					return cl.fail(err, "")
				}
				return printRecords(c, recs)
			}
			ts, problems, err := st.List(cl.ctx)
			if err != nil {
				return cl.fail(err, "")
			}
			attached, err := attachedByTemplate(cl, st)
			if err != nil {
				return err
			}
			return printNotificationTemplates(c, ts, attached, problems)
		},
	}
}

// printNotificationTemplates prints templates as notification list does,
// with where each is attached.
func printNotificationTemplates(c *cli.Context, ts []*notify.Template, attached map[string][]string, problems []notify.Problem) error {
	if c.Bool("json") {
		rows := make([]templateRow, 0, len(ts))
		for _, t := range ts {
			rows = append(rows, templateRow{t, attached[t.Name]})
		}
		return writeJSON(c.App.Writer, struct {
			Templates []templateRow    `json:"templates"`
			Problems  []notify.Problem `json:"problems,omitempty"`
		}{rows, problems})
	}
	tw := newTable(c.App.Writer)
	fmt.Fprintln(tw, "NAME\tKIND\tDESTINATION\tATTACHED")
	for _, t := range ts {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.Name, t.Kind, destination(t), dash(strings.Join(attached[t.Name], ", ")))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range problems {
		fmt.Fprintf(c.App.ErrWriter, "jobengine: stored notification template %s is not valid: %s\n", p.Name, p.Err)
	}
	return nil
}

// destination says where a template delivers.
func destination(t *notify.Template) string {
	switch t.Kind {
	case notify.Webhook:
		return t.Webhook.URL
	case notify.Email:
		return strings.Join(t.Email.To, ", ") + " via " + t.Email.Host
	case notify.Command:
		return strings.Join(t.Command.Argv, " ")
	}
	return ""
}

// attachedByTemplate returns, per template, where it is attached:
// "action backup (failure)".
func attachedByTemplate(cl *client, st *notify.Store) (map[string][]string, error) {
	atts, err := st.Attachments(cl.ctx)
	if err != nil {
		return nil, cl.fail(err, "")
	}
	return attachedMap(atts), nil
}

// attachedMap returns, per template, where atts attach it.
func attachedMap(atts []notify.Attachment) map[string][]string {
	out := map[string][]string{}
	for _, a := range atts {
		for _, ev := range jobs.NotifyEvents {
			for _, n := range a.Notifications.For(ev) {
				out[n] = append(out[n], attachedText(a.Kind, a.Target, ev))
			}
		}
	}
	for _, v := range out {
		sort.Strings(v)
	}
	return out
}

// attachedText is one place a template is attached, as list and show say
// it.
func attachedText(kind notify.AttachKind, target string, ev jobs.NotifyEvent) string {
	return fmt.Sprintf("%s %s (%s)", kind, target, ev)
}

func printRecords(c *cli.Context, recs []*notify.Record) error {
	if c.Bool("json") {
		if recs == nil {
			recs = []*notify.Record{}
		}
		return writeJSON(c.App.Writer, recs)
	}
	tw := newTable(c.App.Writer)
	fmt.Fprintln(tw, "ID\tEVENT\tJOB\tSTATE\tATTEMPTS\tERROR")
	for _, r := range recs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", r.ID, dash(string(r.Event)), dash(r.Job.ID), dash(string(r.Job.State)), r.Attempts, dash(oneLine(r.LastError)))
	}
	return tw.Flush()
}

func notificationShowCommand() *cli.Command {
	return &cli.Command{
		Name:      "show",
		Usage:     "show a notification template (its secret is never shown, only whether it is set)",
		ArgsUsage: "NAME",
		Flags:     withEnv("notification show", jsonFlag("print JSON")),
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
			st := notify.NewStore(cl.conn)
			t, _, err := st.Get(cl.ctx, args[0])
			if err != nil {
				return notifyFail(cl, err)
			}
			attached, err := attachedByTemplate(cl, st)
			if err != nil {
				return err
			}
			return printNotificationTemplate(c, t, attached[t.Name])
		},
	}
}

// printNotificationTemplate prints a template as notification show does,
// with where it is attached.
func printNotificationTemplate(c *cli.Context, t *notify.Template, attached []string) error {
	if c.Bool("json") {
		return writeJSON(c.App.Writer, templateRow{t, attached})
	}
	tw := newTable(c.App.Writer)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", k, v)
		}
	}
	row("name", t.Name)
	row("kind", string(t.Kind))
	row("description", t.Description)
	switch t.Kind {
	case notify.Webhook:
		row("url", t.Webhook.URL)
		keys := make([]string, 0, len(t.Webhook.Headers))
		for k := range t.Webhook.Headers {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			row("header", k+": "+t.Webhook.Headers[k])
		}
	case notify.Email:
		e := t.Email
		port, tls := e.Port, e.StartTLS
		if port == 0 {
			port = 587
		}
		if tls == "" {
			tls = notify.StartTLSRequired
		}
		row("smtp", fmt.Sprintf("%s:%d (starttls %s)", e.Host, port, tls))
		row("ca-file", e.CAFile)
		row("username", e.Username)
		row("from", e.From)
		row("to", strings.Join(e.To, ", "))
	case notify.Command:
		row("command", strings.Join(t.Command.Argv, " "))
	}
	if t.Timeout > 0 {
		row("timeout", time.Duration(t.Timeout).String())
	}
	secret := "not set"
	if t.HasSecret {
		secret = "set"
	}
	row("secret", secret)
	row("attached", dash(strings.Join(attached, ", ")))
	row("created", stamp(t.Created))
	return tw.Flush()
}

func notificationDeleteCommand() *cli.Command {
	return &cli.Command{
		Name:      "delete",
		Usage:     "delete a notification template and its secret (detach it first)",
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
			if err := notify.NewStore(cl.conn).Delete(cl.ctx, args[0]); err != nil {
				return notifyFail(cl, err)
			}
			fmt.Fprintf(c.App.Writer, "notification template %s deleted\n", args[0])
			return nil
		},
	}
}

func notificationTestCommand() *cli.Command {
	return &cli.Command{
		Name:      "test",
		Usage:     "deliver a test notification now and say whether it went through",
		ArgsUsage: "NAME",
		Description: "Sends a made-up successful job, marked \"test\": true, with the template from this host (not through\n" +
			"the outbox). Exit 0 when the receiver took it, 1 with its error otherwise.",
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
			st := notify.NewStore(cl.conn)
			if err := st.Test(cl.ctx, args[0]); err != nil {
				return notifyFail(cl, err)
			}
			printTested(c, args[0])
			return nil
		},
	}
}

// notificationAttachCommand is `attach` (or `detach`).
func notificationAttachCommand(attach bool) *cli.Command {
	name, usage := "attach", "notify with a template when jobs of an action (template, workflow, inventory) start, succeed or fail"
	if !attach {
		name, usage = "detach", "stop notifying with a template for an action (template, workflow, inventory)"
	}
	return &cli.Command{
		Name:      name,
		Usage:     usage,
		ArgsUsage: "NAME",
		Flags: withEnv("notification "+name,
			&cli.StringFlag{Name: "action", Usage: "the jobs of this action"},
			&cli.StringFlag{Name: "template", Usage: "the jobs launched from this template"},
			&cli.StringFlag{Name: "workflow", Usage: "the jobs of this workflow template"},
			&cli.StringFlag{Name: "inventory", Usage: "the jobs run on this inventory"},
			&cli.StringSliceFlag{Name: "on", Usage: "events: started, success, failure (comma-separated or repeated)"},
		),
		Action: func(c *cli.Context) error {
			name, kind, target, events, err := attachFromFlags(c, attach)
			if err != nil {
				return err
			}
			cl, err := openClient(c)
			if err != nil {
				return err
			}
			defer cl.Close()
			st := notify.NewStore(cl.conn)
			if attach {
				err = st.AttachEvents(cl.ctx, kind, target, name, events...)
			} else {
				err = st.DetachEvents(cl.ctx, kind, target, name, events...)
			}
			if err != nil {
				return notifyFail(cl, err)
			}
			printAttached(c, attach, name, kind, target)
			return nil
		},
	}
}

// attachFromFlags reads the argument and flags of notification attach
// (or detach): the template, what it is attached to, and the events
// (without repeats).
func attachFromFlags(c *cli.Context, attach bool) (name string, kind notify.AttachKind, target string, events []jobs.NotifyEvent, err error) {
	verb := "attach"
	if !attach {
		verb = "detach"
	}
	args, err := parseArgs(c, "NAME")
	if err != nil {
		return "", "", "", nil, err
	}
	for _, k := range notify.AttachKinds {
		if v := c.String(string(k)); v != "" {
			if kind != "" {
				return "", "", "", nil, usagef("%s: give one of --action, --template, --workflow and --inventory", verb)
			}
			kind, target = k, v
		}
	}
	if kind == "" {
		return "", "", "", nil, usagef("%s: say what to %s: --action NAME (or --template, --workflow, --inventory)", verb, verb)
	}
	if !notify.ValidTarget(target) {
		return "", "", "", nil, usagef("--%s %q: type 1–64 characters without spaces or slashes", kind, target)
	}
	for _, on := range c.StringSlice("on") {
		for _, s := range strings.Split(on, ",") {
			ev, err := jobs.ParseNotifyEvent(s)
			if err != nil {
				return "", "", "", nil, usagef("--on %q: type started, success or failure", s)
			}
			if !slices.Contains(events, ev) {
				events = append(events, ev)
			}
		}
	}
	if len(events) == 0 {
		return "", "", "", nil, usagef("%s: say for which events with --on, such as --on failure or --on started,success,failure", verb)
	}
	return args[0], kind, target, events, nil
}

// printAttached says what attach (or detach) did.
func printAttached(c *cli.Context, attach bool, name string, kind notify.AttachKind, target string) {
	what := "attached to"
	if !attach {
		what = "detached from"
	}
	fmt.Fprintf(c.App.Writer, "%s %s %s %s\n", name, what, kind, target)
}

func notificationRetryCommand() *cli.Command {
	return &cli.Command{
		Name:      "retry",
		Usage:     "send parked notifications again (all of them, or those named)",
		ArgsUsage: "[ID...]",
		Action: func(c *cli.Context) error {
			cl, err := openClient(c)
			if err != nil {
				return err
			}
			defer cl.Close()
			n, err := notify.NewStore(cl.conn).Retry(cl.ctx, c.Args().Slice()...)
			if err != nil {
				return notifyFail(cl, err)
			}
			printRetried(c, n)
			return nil
		},
	}
}

// printTested says that a test notification went through.
func printTested(c *cli.Context, name string) {
	fmt.Fprintf(c.App.Writer, "test notification delivered with %s\n", name)
}

// printRetried says how many parked notices were sent back.
func printRetried(c *cli.Context, n int) {
	fmt.Fprintf(c.App.Writer, "%d notification(s) sent back for delivery\n", n)
}
