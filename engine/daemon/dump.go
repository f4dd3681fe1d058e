package daemon

import (
	"cmp"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"go.uber.org/zap"
)

// Messages of a state dump (SIGUSR1). A dump is several log lines, none
// with a line break in it, so that it reads well in the journal: a
// summary, one line per running job, per plugin process, and per group
// of goroutines with the same stack (with that stack).
const (
	LogDump           = "state dump"
	LogDumpJob        = "state dump: running job"
	LogDumpPlugin     = "state dump: plugin process"
	LogDumpGoroutines = "state dump: goroutines"
)

// maxDumpIDs bounds the goroutine ids listed for one group.
const maxDumpIDs = 20

// goroutineGroup is a set of goroutines with the same state and stack.
type goroutineGroup struct {
	state   string   // "select", "chan receive", "running", …
	longest string   // the longest wait shown ("2 minutes"), if any
	ids     []int    // goroutine ids
	frames  []string // "package.function file.go:line", innermost first
}

var goroutineHeader = regexp.MustCompile(`^goroutine (\d+) \[([^\]]*)\]:$`)

// goroutineGroups groups the goroutines of a runtime.Stack(all) dump by
// state and stack, the largest group first.
func goroutineGroups(dump string) []*goroutineGroup {
	byKey := map[string]*goroutineGroup{}
	var out []*goroutineGroup
	for _, block := range strings.Split(strings.TrimSpace(dump), "\n\n") {
		lines := strings.Split(block, "\n")
		m := goroutineHeader.FindStringSubmatch(lines[0])
		if m == nil {
			continue
		}
		id, _ := strconv.Atoi(m[1])
		parts := strings.Split(m[2], ", ")
		state, wait := parts[0], ""
		for _, p := range parts[1:] {
			if strings.HasSuffix(p, "minutes") || strings.HasSuffix(p, "minute") {
				wait = p
			} else {
				state += ", " + p // "locked to thread", "syscall", …
			}
		}
		var frames []string
		for i := 1; i+1 < len(lines); i += 2 {
			frames = append(frames, frame(lines[i], lines[i+1]))
		}
		key := state + "\x00" + strings.Join(frames, "\x00")
		g := byKey[key]
		if g == nil {
			g = &goroutineGroup{state: state, frames: frames}
			byKey[key] = g
			out = append(out, g)
		}
		g.ids = append(g.ids, id)
		if minutes(wait) > minutes(g.longest) {
			g.longest = wait
		}
	}
	slices.SortStableFunc(out, func(a, b *goroutineGroup) int { return cmp.Compare(len(b.ids), len(a.ids)) })
	return out
}

// frame makes one line of a stack from its two lines in the dump:
// "executor.(*Executor).worker executor.go:270" (the function without its
// arguments or import path, the file without its directory).
func frame(fn, loc string) string {
	fn = strings.TrimSpace(fn)
	if rest, ok := strings.CutPrefix(fn, "created by "); ok {
		if i := strings.Index(rest, " in goroutine "); i >= 0 {
			rest = rest[:i]
		}
		fn = "created by " + shortFunc(rest)
	} else {
		if strings.HasSuffix(fn, ")") {
			if i := strings.LastIndexByte(fn, '('); i > 0 {
				fn = fn[:i]
			}
		}
		fn = shortFunc(fn)
	}
	loc = strings.TrimSpace(loc)
	if i := strings.LastIndex(loc, " +0x"); i >= 0 {
		loc = loc[:i]
	}
	if i := strings.LastIndexByte(loc, '/'); i >= 0 {
		loc = loc[i+1:]
	}
	return fn + " " + loc
}

// shortFunc drops the import path of a function's package.
func shortFunc(fn string) string {
	if i := strings.LastIndexByte(fn, '/'); i >= 0 {
		return fn[i+1:]
	}
	return fn
}

// minutes reads "12 minutes" (0 when empty).
func minutes(s string) int {
	n, _ := strconv.Atoi(strings.Fields(s + " 0")[0])
	return n
}

// dump logs a state dump: the summary line with fields, the lines
// details adds (running jobs, plugin processes), then one line per group
// of goroutines.
func dump(log *zap.Logger, details func(), fields ...zap.Field) {
	groups := goroutineGroups(stacks())
	log.Info(LogDump, append([]zap.Field{zap.Int("goroutines", runtime.NumGoroutine()), zap.Int("goroutine-groups", len(groups))}, fields...)...)
	if details != nil {
		details()
	}
	for _, g := range groups {
		ids := g.ids
		if len(ids) > maxDumpIDs {
			ids = ids[:maxDumpIDs]
		}
		f := []zap.Field{zap.Int("count", len(g.ids)), zap.String("state", g.state)}
		if g.longest != "" {
			f = append(f, zap.String("waiting", g.longest))
		}
		f = append(f, zap.String("where", where(g.frames)), zap.Ints("ids", ids), zap.Strings("stack", g.frames))
		log.Info(LogDumpGoroutines, f...)
	}
}

// where is the innermost frame of a stack outside the runtime and the
// standard library's waiting primitives: what the goroutines are doing.
func where(frames []string) string {
	for _, f := range frames {
		if !strings.HasPrefix(f, "runtime.") && !strings.HasPrefix(f, "sync.") && !strings.HasPrefix(f, "poll.") &&
			!strings.HasPrefix(f, "syscall.") && !strings.HasPrefix(f, "time.Sleep") {
			return f
		}
	}
	if len(frames) > 0 {
		return frames[0]
	}
	return ""
}
