package maintenance

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/internal/testing/estest"
	"github.com/jobengine/jobengine/internal/testing/poll"
	"github.com/jobengine/jobengine/internal/testing/zktest"
)

// TestPumpFollowsLeadership runs the index pump on two members: only the
// leader's pump indexes; when the leader's session expires the other
// takes over, and the first, back on a new session, takes over again when
// the second stops. Every version written meanwhile is indexed.
func TestPumpFollowsLeadership(t *testing.T) {
	s := estest.Start(t, estest.Options{})
	es, err := index.New(index.Config{Hosts: []string{s.URL()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = es.Close(context.Background()) })
	px, err := zktest.NewProxy(testZK.Servers[0].Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(px.Close)
	root := testRoot(t)
	cp, cd := dial(t, px.Addr(), root), dial(t, "", root)
	cfg := Config{Index: es, Cleanup: CleanupConfig{Disabled: true}}
	a := startMember(t, "proxied", cp, cfg)
	poll.For(t, wait, 10*time.Millisecond, func() error {
		return errorIf(!a.m.Leading() || !pumpOf(a.m).Active(), "the first member does not pump")
	})
	b := startMember(t, "direct", cd, cfg)
	writer := storeWithOutbox(t, cd)
	j := createJob(t, writer)
	indexed(t, s, es, j)
	if pumpOf(b.m).Active() {
		t.Fatal("the standby's pump is active")
	}

	oldSession := cp.SessionID()
	px.Block()
	poll.For(t, wait, 10*time.Millisecond, func() error {
		return errorIf(!b.m.Leading() || !pumpOf(b.m).Active(), "the standby did not take over")
	})
	if pumpOf(a.m).Active() {
		t.Fatal("the silenced member still pumps")
	}
	k := createJob(t, writer)
	indexed(t, s, es, k)
	px.Unblock()
	poll.For(t, wait, 20*time.Millisecond, func() error {
		return errorIf(!cp.Connected() || cp.SessionID() == oldSession, "no new session yet")
	})
	if pumpOf(a.m).Active() {
		t.Fatal("two pumps active after the expired session came back")
	}

	b.halt(t)
	poll.For(t, wait, 10*time.Millisecond, func() error {
		return errorIf(!a.m.Leading() || !pumpOf(a.m).Active(), "the first member did not take over again")
	})
	l := createJob(t, writer)
	indexed(t, s, es, l)
}

func storeWithOutbox(t *testing.T, conn *zkconn.Conn) *jobs.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := index.EnsurePaths(ctx, conn); err != nil {
		t.Fatal(err)
	}
	return jobs.NewStore(conn, jobs.StoreConfig{Outbox: index.Outbox(conn)})
}

func createJob(t *testing.T, s *jobs.Store) *jobs.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	j, err := s.Create(ctx, jobs.NewJob{Action: "echo", CreatedBy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// indexed waits until Elasticsearch holds j at its version.
func indexed(t *testing.T, s *estest.Server, es *index.Client, j *jobs.Job) {
	t.Helper()
	poll.For(t, wait, 20*time.Millisecond, func() error {
		d, ok := s.Doc(es.JobsIndex(), j.UUID())
		if !ok {
			return errors.New(j.ID + " not indexed")
		}
		return errorIf(d.Version != j.Version, "%s indexed at version %d, want %d", j.ID, d.Version, j.Version)
	})
}

// TestLeaderWithoutElasticsearchWarns: a leader that cannot pump while the
// cluster indexes says so, once per term, with the outbox path.
func TestLeaderWithoutElasticsearchWarns(t *testing.T) {
	conn := dial(t, "", testRoot(t))
	storeWithOutbox(t, conn) // the cluster indexes: the outbox exists
	log, obs := logs(t)
	mb := startMember(t, "m", conn, Config{Logger: log, Cleanup: CleanupConfig{Disabled: true}})
	poll.For(t, wait, 10*time.Millisecond, func() error { return errorIf(!mb.m.Leading(), "not leading yet") })
	poll.For(t, wait, 10*time.Millisecond, func() error {
		n := obs.FilterLevelExact(zapcore.WarnLevel).FilterField(zap.String("outbox", index.OutboxPath(conn))).Len()
		return errorIf(n != 1, "%d warnings naming the outbox, want 1", n)
	})
}
