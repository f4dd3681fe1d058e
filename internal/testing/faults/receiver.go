package faults

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/notify"
	"github.com/jobengine/jobengine/internal/check"
)

// Notifications in the run: the schedule's jobs notify a webhook template
// of their outcome, pointing at a receiver the harness runs in-process.
// The receiver checks each request's signature and records its delivery
// id (the idempotency key) and what it says; its fault stops it for a
// while. Delivery is at least once: every notice must arrive, and the
// duplicates are counted and named by their key.

// hookName names the run's webhook notification template.
const hookName = "faults-hook"

// hookSecret signs the webhook's requests. It is the run's own, made up
// for the test receiver.
const hookSecret = "faults-receiver-signing-key"

// Delivery is one request the receiver accepted.
type Delivery struct {
	ID    string           `json:"id"` // the X-Jobengine-Delivery header
	Job   string           `json:"job"`
	Event jobs.NotifyEvent `json:"event"`
	At    time.Time        `json:"at"`
}

// Notices is what the checker needs of the run's notifications.
type Notices struct {
	Hook       string     `json:"hook"`
	Deliveries []Delivery `json:"deliveries"`
	// Pending and Parked count the notices left in the outbox and parked
	// by the sender at the end.
	Pending, Parked int
	// Refused counts requests the receiver refused (bad signature or
	// body): none is expected.
	Refused int
	// Mail names the e-mail template, when the run had the SMTP
	// receiver; MailDeliveries are the e-mails it accepted, MailRefused
	// those that did not say which notice they are.
	Mail           string     `json:"mail,omitempty"`
	MailDeliveries []Delivery `json:"mail_deliveries,omitempty"`
	MailRefused    int        `json:"mail_refused,omitempty"`
}

// NoticeCounts sums up the notifications.
type NoticeCounts struct {
	// Expected notices (one per final job that notifies the hook of its
	// outcome), Delivered of them at least once, Deliveries in all.
	Expected   int `json:"expected"`
	Delivered  int `json:"delivered"`
	Deliveries int `json:"deliveries"`
	// Duplicates are deliveries beyond the first of one key: the keys,
	// with how many times each came.
	Duplicates    int      `json:"duplicates"`
	DuplicateKeys []string `json:"duplicate_keys,omitempty"`
	Pending       int      `json:"pending"`
	Parked        int      `json:"parked"`
}

// receiver is the webhook receiver: an HTTP server on a fixed address
// that can be stopped and started again there.
type receiver struct {
	addr string

	mu         sync.Mutex
	srv        *http.Server
	deliveries []Delivery
	refused    int
}

func startReceiver() (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &receiver{addr: ln.Addr().String()}
	r.serve(ln)
	return r, nil
}

func (r *receiver) url() string { return "http://" + r.addr + "/hook" }

func (r *receiver) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(r.handle), ReadHeaderTimeout: 5 * time.Second}
	r.mu.Lock()
	r.srv = srv
	r.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

func (r *receiver) handle(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if err == nil {
		err = notify.Verify([]byte(hookSecret), req.Header.Get(notify.HeaderTimestamp), req.Header.Get(notify.HeaderSignature), body, time.Now(), notify.DefaultTolerance)
	}
	var m notify.Message
	if err == nil {
		err = json.Unmarshal(body, &m)
	}
	if err == nil && m.ID != req.Header.Get(notify.HeaderDelivery) {
		err = fmt.Errorf("the body's id %q is not the delivery header's", m.ID)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.refused++
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.deliveries = append(r.deliveries, Delivery{ID: m.ID, Job: m.Job.ID, Event: m.Event, At: time.Now()})
	w.WriteHeader(http.StatusNoContent)
}

// down closes the listener and every connection: requests are refused.
func (r *receiver) down() {
	r.mu.Lock()
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// up listens on the same address again.
func (r *receiver) up(ctx context.Context) error {
	var ln net.Listener
	uctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err := check.Until(uctx, 50*time.Millisecond, func() error {
		var err error
		ln, err = net.Listen("tcp", r.addr)
		return err
	})
	if err != nil {
		return fmt.Errorf("faults: the receiver cannot listen on %s again: %w", r.addr, err)
	}
	r.serve(ln)
	return nil
}

func (r *receiver) close() { r.down() }

// snapshot returns the deliveries so far and the refused requests.
func (r *receiver) snapshot() ([]Delivery, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Delivery(nil), r.deliveries...), r.refused
}

// setUpReceiver starts the receiver and stores the webhook template.
func (h *Harness) setUpReceiver(ctx context.Context) (stop func(), err error) {
	h.recv, err = startReceiver()
	if err != nil {
		return nil, err
	}
	t := notify.Template{Name: hookName, Kind: notify.Webhook, Webhook: &notify.WebhookSpec{URL: h.recv.url()},
		Timeout: notify.Duration(2 * time.Second)}
	if err := notify.NewStore(h.conn).Create(ctx, t, []byte(hookSecret)); err != nil {
		h.recv.close()
		return nil, fmt.Errorf("faults: the webhook template: %w", err)
	}
	return h.recv.close, nil
}

// receiverDown stops the receiver for the hold and starts it again; the
// note says how many notices waited and when one was delivered again.
func (h *Harness) receiverDown(ctx context.Context, f Fault, e *FaultEvent, probe func()) error {
	return h.sinkDown(ctx, f, e, probe, h.recv, "webhook receiver", "none delivered within 30s", "delivered again")
}

// sink is a receiver of notices (the webhook receiver, the SMTP
// receiver) that a fault stops and starts again.
type sink interface {
	down()
	up(ctx context.Context) error
	snapshot() ([]Delivery, int)
}

// sinkDown stops s for the hold and starts it again; the note says how
// many notices waited and when s received one again (lost: the note when
// none came within 30 s; again: what came).
func (h *Harness) sinkDown(ctx context.Context, f Fault, e *FaultEvent, probe func(), s sink, target, lost, again string) error {
	e.Target = target
	e.At = time.Now()
	s.down()
	probe()
	herr := sleep(ctx, f.Hold)
	e.HealAt = time.Now()
	waiting, _ := notify.NewStore(h.conn).Pending(ctx)
	before, _ := s.snapshot()
	if err := s.up(ctx); err != nil {
		return err
	}
	e.Healed = time.Now()
	if herr != nil {
		return herr
	}
	if len(waiting) == 0 {
		e.Note = "(no notice waiting at the restart)"
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err := check.Until(wctx, 20*time.Millisecond, func() error {
		if now, _ := s.snapshot(); len(now) == len(before) {
			return errors.New("nothing received since the restart")
		}
		return nil
	})
	if err != nil {
		e.Note = fmt.Sprintf("(%d notices waiting at the restart; %s)", len(waiting), lost)
		return nil
	}
	e.Note = fmt.Sprintf("(%d notices waiting at the restart; %s after %s)", len(waiting), again, time.Since(e.Healed).Round(10*time.Millisecond))
	return nil
}

// waitNotices waits until the notice outbox is empty (every notice
// delivered or parked), or DrainTimeout passes, before the controllers,
// whose leader sends them, are stopped.
func (h *Harness) waitNotices(ctx context.Context) {
	dctx, cancel := context.WithTimeout(ctx, h.DrainTimeout)
	defer cancel()
	store := notify.NewStore(h.conn)
	err := check.Until(dctx, 200*time.Millisecond, func() error {
		p, err := store.Pending(dctx)
		if err != nil {
			return err
		}
		if len(p) > 0 {
			return fmt.Errorf("%d notices not delivered", len(p))
		}
		return nil
	})
	if err != nil {
		h.logf("the notices were not delivered within %s: %v", h.DrainTimeout, err)
	}
}

// notices gathers the run's notifications at the end.
func (h *Harness) notices(ctx context.Context) (*Notices, error) {
	store := notify.NewStore(h.conn)
	pending, err := store.Pending(ctx)
	if err != nil {
		return nil, err
	}
	parked, err := store.Failed(ctx)
	if err != nil {
		return nil, err
	}
	ds, refused := h.recv.snapshot()
	n := &Notices{Hook: hookName, Deliveries: ds, Pending: len(pending), Parked: len(parked), Refused: refused}
	if h.mail != nil {
		n.Mail = mailName
		n.MailDeliveries, n.MailRefused = h.mail.snapshot()
	}
	return n, nil
}

// checkNotices: every final job that notifies the hook of its outcome
// was notified at least once, by one notice (one idempotency key), and
// nothing arrived that no job's state explains; duplicates (one key
// delivered more than once) are counted and named, not violations;
// nothing is left in the outbox or parked.
func checkNotices(r *Report, in Input, docs map[string]*jobs.Job) {
	n := in.Notices
	if n == nil {
		return
	}
	c := &NoticeCounts{Deliveries: len(n.Deliveries), Pending: n.Pending, Parked: n.Parked}
	r.Notices = c
	if n.Pending > 0 {
		r.violate("notifications: %d notices left undelivered in the outbox at the end", n.Pending)
	}
	if n.Parked > 0 {
		r.violate("notifications: %d notices parked by the sender", n.Parked)
	}
	if n.Refused > 0 {
		r.violate("notifications: the receiver refused %d requests (bad signature or body)", n.Refused)
	}
	countNotices(r, in, docs, c, n.Hook, n.Deliveries)
	if n.Mail != "" {
		m := &NoticeCounts{Deliveries: len(n.MailDeliveries)}
		r.Mail = m
		if n.MailRefused > 0 {
			r.violate("notifications: the SMTP receiver got %d e-mails that name no notice of %s (X-Jobengine-Delivery, Message-ID)", n.MailRefused, n.Mail)
		}
		countNotices(r, in, docs, m, n.Mail, n.MailDeliveries)
	}
}

// countNotices applies the at-least-once rule to the deliveries of one
// template: every final job that notifies it of its outcome got one
// notice (one key) at least once; every delivery is explained by a job's
// state; keys delivered more than once are counted and named.
func countNotices(r *Report, in Input, docs map[string]*jobs.Job, c *NoticeCounts, tmpl string, deliveries []Delivery) {
	times := map[string]int{}     // key → deliveries
	keys := map[string][]string{} // job + event → distinct keys
	for _, d := range deliveries {
		if times[d.ID] == 0 {
			keys[d.Job+" "+string(d.Event)] = append(keys[d.Job+" "+string(d.Event)], d.ID)
		}
		times[d.ID]++
		j, ok := docs[d.Job]
		switch {
		case !ok:
			r.violate("notifications: %s (%s) is about job %s, which does not exist", d.ID, d.Event, d.Job)
		case !notifies(j, d.Event, tmpl):
			r.violate("notifications: %s is a %s notice of job %s, which does not notify %s of it", d.ID, d.Event, d.Job, tmpl)
		case d.Event != jobs.NotifyStarted && d.Event != outcome(j.State):
			r.violate("notifications: %s is a %s notice of job %s, which ended %s", d.ID, d.Event, d.Job, j.State)
		}
	}
	for _, j := range in.Jobs {
		ev := outcome(j.State)
		if ev == "" || !notifies(j, ev, tmpl) {
			continue
		}
		c.Expected++
		switch ks := keys[j.ID+" "+string(ev)]; len(ks) {
		case 0:
			r.violate("notifications: job %s ended %s and its %s notice never arrived (%s)", j.ID, j.State, ev, tmpl)
		case 1:
			c.Delivered++
		default:
			c.Delivered++
			r.violate("notifications: job %s's %s came as %d notices (%s): one state change, one notice", j.ID, ev, len(ks), strings.Join(ks, ", "))
		}
	}
	for k, t := range times {
		if t > 1 {
			c.Duplicates += t - 1
			c.DuplicateKeys = append(c.DuplicateKeys, fmt.Sprintf("%s ×%d", k, t))
		}
	}
	sort.Strings(c.DuplicateKeys)
}

// notifies reports whether j notifies hook of ev.
func notifies(j *jobs.Job, ev jobs.NotifyEvent, hook string) bool {
	return slices.Contains(j.Notifications.For(ev), hook)
}

// outcome is the event a final state notifies; "" for a job not final.
func outcome(s jobs.State) jobs.NotifyEvent {
	switch {
	case s == jobs.Success:
		return jobs.NotifySuccess
	case s.Final():
		return jobs.NotifyFailure
	}
	return ""
}
