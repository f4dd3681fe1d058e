package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/election"
	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/internal/backoff"
	"github.com/jobengine/jobengine/internal/loop"
)

// Defaults of the sender.
const (
	DefaultMaxAttempts = 5
	DefaultMinBackoff  = 5 * time.Second
	DefaultMaxBackoff  = 5 * time.Minute
	DefaultWorkers     = 4
	DefaultResync      = 30 * time.Second
)

// SenderName names the sender among leader-run services.
const SenderName = "notifications"

// SenderConfig configures the sender. Zero values take the defaults.
type SenderConfig struct {
	// Store is the notification store (required).
	Store *Store
	// Logger receives the sender's log lines.
	Logger *zap.Logger
	// MaxAttempts is how many failed deliveries park a notice.
	MaxAttempts int
	// MinBackoff and MaxBackoff bound the wait after a failed delivery; it
	// doubles with each attempt, jittered.
	MinBackoff, MaxBackoff time.Duration
	// Workers bounds the deliveries in flight.
	Workers int
	// Resync re-reads the outbox even when no watch fired: a safety net.
	Resync time.Duration
}

// Sender is the leader-run service that delivers notices: it watches the
// outbox, delivers each notice with its template, deletes it once
// delivered, and on failure records the attempt and tries again after a
// back-off, until MaxAttempts park it in /notifications/failed with its
// error. Every write it makes carries the leader's election fence, so a
// sender that lost leadership changes nothing; a notice it was delivering
// then stays in the outbox and the next leader delivers it again with the
// same ID (delivery is at least once; receivers deduplicate by ID).
//
// It is a service with Start and Stop, run by whichever member leads.
type Sender struct {
	cfg SenderConfig
	log *zap.Logger

	loop loop.Loop
}

// NewSender returns a sender; it contacts no server.
func NewSender(cfg SenderConfig) (*Sender, error) {
	if cfg.Store == nil {
		return nil, fmt.Errorf("%w: the sender needs a notification store", ErrInvalid)
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(DefaultMaxBackoff, cfg.MinBackoff)
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.Resync <= 0 {
		cfg.Resync = DefaultResync
	}
	return &Sender{cfg: cfg, log: cfg.Logger.Named("notify")}, nil
}

// Name names the service.
func (s *Sender) Name() string { return SenderName }

// Start starts delivering under the leader context ctx (its term fences
// every write) and returns.
func (s *Sender) Start(ctx context.Context) error {
	term := election.TermOf(ctx)
	if term == nil {
		return fmt.Errorf("%w: the sender runs under a leader's term", ErrInvalid)
	}
	if err := s.cfg.Store.Ensure(ctx); err != nil {
		return err
	}
	if !s.loop.Start(ctx, func(ctx context.Context) { s.run(ctx, term) }) {
		return fmt.Errorf("%w: the sender is running", ErrInvalid)
	}
	return nil
}

// Stop ends the work and returns once every delivery it started has
// returned. A delivery cut short stays in the outbox.
func (s *Sender) Stop() {
	s.loop.Stop()
}

// result is a finished delivery.
type result struct {
	name string
	next time.Time // when to look at it again; zero: it is gone
}

// run is the sender's loop: list the outbox (with a watch), start the due
// deliveries, sleep until a watch fires, a delivery ends, a retry is due,
// or the resync.
func (s *Sender) run(ctx context.Context, term *election.Term) {
	st := s.cfg.Store
	conn := st.Conn()
	inflight := map[string]bool{}
	later := map[string]time.Time{} // not due before; learned from reads and own writes
	results := make(chan result, s.cfg.Workers)
	var wg sync.WaitGroup
	defer wg.Wait()
	bo := backoff.New(100*time.Millisecond, 5*time.Second)
	s.log.Info("delivering notifications")
	defer s.log.Info("no longer delivering notifications")
	for {
		var names []string
		var watch <-chan zk.Event
		err := zkconn.Do(ctx, func() error {
			var err error
			names, _, watch, err = conn.ChildrenW(st.OutboxPath())
			return err
		})
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, zk.ErrNoNode) {
				_ = st.Ensure(ctx)
			} else {
				s.log.Warn("cannot list the notification outbox; retrying", zap.Error(err))
			}
			bo.Wait(ctx)
			continue
		}
		bo.Reset()
		now := time.Now()
		wake := now.Add(s.cfg.Resync)
		present := make(map[string]bool, len(names))
		for _, n := range names {
			present[n] = true
			if inflight[n] {
				continue
			}
			if at, ok := later[n]; ok && at.After(now) {
				wake = minTime(wake, at)
				continue
			}
			if len(inflight) >= s.cfg.Workers {
				break // a worker's end wakes the loop
			}
			rec, ver, err := s.read(ctx, term, n)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				s.log.Warn("cannot read a notice; retrying", zap.String("notice", n), zap.Error(err))
				wake = minTime(wake, now.Add(time.Second))
				continue
			}
			if rec == nil {
				continue // gone, or parked as not valid
			}
			if rec.NextAttempt != nil && rec.NextAttempt.After(now) {
				later[n] = *rec.NextAttempt
				wake = minTime(wake, *rec.NextAttempt)
				continue
			}
			inflight[n] = true
			wg.Add(1)
			go func() {
				defer wg.Done()
				next := s.deliver(ctx, term, rec, ver)
				select {
				case results <- result{name: n, next: next}:
				case <-ctx.Done():
				}
			}()
		}
		for n := range later {
			if !present[n] {
				delete(later, n)
			}
		}
		timer := time.NewTimer(time.Until(wake))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-watch:
		case <-timer.C:
		case r := <-results:
			delete(inflight, r.name)
			if !r.next.IsZero() {
				later[r.name] = r.next
			}
		}
		timer.Stop()
	drain:
		for {
			select {
			case r := <-results:
				delete(inflight, r.name)
				if !r.next.IsZero() {
					later[r.name] = r.next
				}
			default:
				break drain
			}
		}
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// read reads a notice; one that is not valid is parked as found, and nil
// returned.
func (s *Sender) read(ctx context.Context, term *election.Term, name string) (*Record, int32, error) {
	st := s.cfg.Store
	p := st.OutboxPath() + "/" + name
	var data []byte
	var stat *zk.Stat
	err := zkconn.Do(ctx, func() error {
		var err error
		data, stat, err = st.Conn().Get(p)
		return err
	})
	if errors.Is(err, zk.ErrNoNode) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	rec, derr := decodeRecord(name, data)
	if derr == nil {
		return rec, stat.Version, nil
	}
	raw := string(data)
	if len(raw) > 4096 {
		raw = raw[:4096]
	}
	now := time.Now().UTC()
	bad := &Record{LastError: derr.Error(), Parked: &now, Raw: raw}
	bad.ID = name
	if err := s.park(ctx, term, name, stat.Version, bad); err != nil {
		return nil, 0, err
	}
	s.log.Error("a notice that is not valid was parked", zap.String("notice", name), zap.Error(derr))
	return nil, 0, nil
}

// deliver delivers one notice and records the outcome, fenced. It returns
// when to look at the notice again: zero once it is gone (delivered,
// parked, or changed by someone else).
func (s *Sender) deliver(ctx context.Context, term *election.Term, rec *Record, ver int32) time.Time {
	st := s.cfg.Store
	fields := []zap.Field{zap.String("notice", rec.ID), zap.String("notification", rec.Notification),
		zap.String("event", string(rec.Event)), zap.String("job", rec.Job.ID)}
	if err := term.Check(); err != nil {
		return time.Time{}
	}
	err := s.send(ctx, rec)
	if ctx.Err() != nil {
		return time.Time{} // stopped mid-delivery: the notice stays for the next leader
	}
	p := st.OutboxPath() + "/" + rec.ID
	if err == nil {
		werr := s.write(ctx, term, &zk.DeleteRequest{Path: p, Version: ver})
		if werr != nil {
			s.log.Warn("notification delivered but not removed from the outbox; it may be delivered again", append(fields, zap.Error(werr))...)
			return time.Time{}
		}
		s.log.Debug("notification delivered", append(fields, zap.Int("attempts", rec.Attempts+1))...)
		return time.Time{}
	}
	rec.Attempts++
	rec.LastError = err.Error()
	now := time.Now().UTC()
	if rec.Attempts >= s.cfg.MaxAttempts {
		rec.NextAttempt, rec.Parked = nil, &now
		if werr := s.park(ctx, term, rec.ID, ver, rec); werr != nil {
			s.log.Warn("cannot park a notice", append(fields, zap.Error(werr))...)
			return time.Time{}
		}
		s.log.Error("notification parked: its delivery kept failing", append(fields, zap.Int("attempts", rec.Attempts), zap.Error(err))...)
		return time.Time{}
	}
	next := now.Add(s.retryAfter(rec.Attempts))
	rec.NextAttempt = &next
	data, _ := json.Marshal(rec)
	if werr := s.write(ctx, term, &zk.SetDataRequest{Path: p, Data: data, Version: ver}); werr != nil {
		s.log.Warn("cannot record a failed delivery", append(fields, zap.Error(werr))...)
		return time.Time{}
	}
	s.log.Warn("notification not delivered; retrying later", append(fields, zap.Int("attempt", rec.Attempts),
		zap.Int("max-attempts", s.cfg.MaxAttempts), zap.Time("next-attempt", next), zap.Error(err))...)
	return next
}

// send delivers rec with its template.
func (s *Sender) send(ctx context.Context, rec *Record) error {
	st := s.cfg.Store
	t, _, err := st.Get(ctx, rec.Notification)
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("%w: notification template %s does not exist (deleted after the job named it?)", ErrDelivery, rec.Notification)
	}
	if err != nil {
		return err
	}
	secret, err := st.secret(ctx, t.Name)
	if err != nil {
		return err
	}
	return Deliver(ctx, t, secret, &Message{Notice: rec.Notice})
}

// retryAfter is the wait after the n-th failed attempt: the engine's
// capped, jittered, doubling back-off.
func (s *Sender) retryAfter(n int) time.Duration {
	b := backoff.New(s.cfg.MinBackoff, s.cfg.MaxBackoff)
	d := b.Next()
	for i := 1; i < n; i++ {
		d = b.Next()
	}
	return d
}

// park moves a notice to the failed directory, fenced.
func (s *Sender) park(ctx context.Context, term *election.Term, name string, ver int32, rec *Record) error {
	st := s.cfg.Store
	data, _ := json.Marshal(rec)
	return s.write(ctx, term,
		&zk.CreateRequest{Path: st.FailedPath() + "/" + name, Data: data, Acl: zkconn.ACL},
		&zk.DeleteRequest{Path: st.OutboxPath() + "/" + name, Version: ver})
}

// write applies ops in one multi with the leader's fence.
func (s *Sender) write(ctx context.Context, term *election.Term, ops ...interface{}) error {
	var res []zk.MultiResponse
	err := zkconn.Do(ctx, func() error {
		var err error
		res, err = s.cfg.Store.Conn().Multi(append([]interface{}{term.Fence()}, ops...)...)
		return err
	})
	if err == nil {
		return nil
	}
	i, opErr := zkconn.MultiError(res, err)
	if i == 0 {
		return fmt.Errorf("%w: %v", election.ErrNotLeader, opErr)
	}
	return opErr
}
