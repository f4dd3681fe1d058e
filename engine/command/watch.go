package command

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"
)

// --watch redraws the output of `job list`, `cluster status` and `queue
// stats` at an interval until Ctrl-C or SIGTERM, as watch(1) would, but
// over one ZooKeeper session (or one API client) for the whole run. On a
// terminal each snapshot replaces the last (the screen is cleared and the
// snapshot written in one write, so it does not flicker); otherwise the
// snapshots follow one another, each after a line that says when it was
// taken, so that a log or a pipe keeps every one.

// Bounds of --watch-interval.
const (
	defaultWatchInterval = 2 * time.Second
	// minWatchInterval keeps a forgotten watch from loading ZooKeeper.
	minWatchInterval = 100 * time.Millisecond
)

// clearScreen moves the cursor home and clears the screen (ANSI).
const clearScreen = "\x1b[H\x1b[2J"

// watchFlags are the flags of a command that can watch.
func watchFlags(command string) []cli.Flag {
	return withEnv(command,
		&cli.BoolFlag{Name: "watch", Usage: "redraw the output at an interval (--watch-interval) until Ctrl-C"},
		&cli.DurationFlag{Name: "watch-interval", Value: defaultWatchInterval, Usage: "the interval of --watch (setting it implies --watch)"},
	)
}

// watcher redraws a command's output.
type watcher struct {
	every time.Duration
	title string
	tty   bool
	// signaled ends on SIGINT or SIGTERM; stop releases the signals.
	signaled context.Context
	stop     context.CancelFunc
}

// startWatch reads --watch and --watch-interval: nil when the command does
// not watch. A watching command's c.Context ends on SIGINT or SIGTERM, so
// that a request or read in progress stops with it; call Close when done.
func startWatch(c *cli.Context) (*watcher, error) {
	every := c.Duration("watch-interval")
	if !c.Bool("watch") && !c.IsSet("watch-interval") {
		return nil, nil
	}
	switch {
	case every < minWatchInterval:
		return nil, usagef("--watch-interval %s is below %s: type an interval such as 2s", every, minWatchInterval)
	case c.Bool("json"):
		return nil, usagef("--watch with --json: --watch redraws text for a person; leave out one of them (a program can run the command with --json at its own interval)")
	}
	w := &watcher{every: every, title: "jobengine " + commandPath(c)}
	if f, ok := c.App.Writer.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		w.tty = true
	}
	w.signaled, w.stop = signal.NotifyContext(c.Context, syscall.SIGINT, syscall.SIGTERM)
	c.Context = w.signaled
	return w, nil
}

// Close releases the signals.
func (w *watcher) Close() {
	if w != nil {
		w.stop()
	}
}

// watchRun runs render once without a watcher, else at every interval
// until a signal (exit 0). render writes to c.App.Writer and
// c.App.ErrWriter. An error of the first snapshot ends the command; a
// later one is shown and the watch goes on, as a network blip should not
// end it.
func watchRun(c *cli.Context, w *watcher, render func() error) error {
	if w == nil {
		return render()
	}
	t := time.NewTicker(w.every)
	defer t.Stop()
	for n := 0; ; n++ {
		err := w.snapshot(c, render)
		switch {
		case w.signaled.Err() != nil:
			return nil
		case err != nil && n == 0:
			return err
		case err != nil && !w.tty: // on a terminal, the frame shows it
			fmt.Fprintf(c.App.ErrWriter, "jobengine: %v\n", err)
		}
		select {
		case <-w.signaled.Done():
			return nil
		case <-t.C:
		}
	}
}

// snapshot renders once: into a buffer drawn over the screen on a
// terminal, else after a line with the time.
func (w *watcher) snapshot(c *cli.Context, render func() error) error {
	now := time.Now()
	if !w.tty {
		fmt.Fprintf(c.App.Writer, "--- %s ---\n", now.UTC().Format(time.RFC3339))
		return render()
	}
	var buf bytes.Buffer
	out, errOut := c.App.Writer, c.App.ErrWriter
	// The print functions write to the app's writers: point them at the
	// buffer for this render (the command runs in one goroutine).
	c.App.Writer, c.App.ErrWriter = &buf, &buf
	err := render()
	c.App.Writer, c.App.ErrWriter = out, errOut
	if err != nil {
		fmt.Fprintf(&buf, "jobengine: %v\n", err)
	}
	_, werr := io.WriteString(out, drawWatch(w.title, w.every, now, buf.String()))
	if werr != nil {
		return werr
	}
	return nil
}

// drawWatch is one terminal frame: clear, a title line, the snapshot.
func drawWatch(title string, every time.Duration, at time.Time, body string) string {
	var b strings.Builder
	b.WriteString(clearScreen)
	fmt.Fprintf(&b, "Every %s: %s    %s\n\n", every, title, at.Format("15:04:05"))
	b.WriteString(body)
	return b.String()
}
