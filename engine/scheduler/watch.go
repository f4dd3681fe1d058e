package scheduler

import (
	"errors"
	"sync"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/zkconn"
)

// watcher is an instance.Source that arms a ZooKeeper watch with each read
// of a path not watched yet, and triggers a pass when one fires. One watch
// per path at a time: a path is watched again by the first read after its
// watch fired, so watches never pile up. After a new session every path
// is read (and watched) afresh: go-zookeeper may lose the watches it
// re-registers after a reconnect without a word, and the periodic pass
// covers what was missed meanwhile.
type watcher struct {
	conn    *zkconn.Conn
	trigger func()
	log     *zap.Logger

	mu    sync.Mutex
	armed map[string]bool // "c:"+path (children) or "d:"+path (data)
	quit  chan struct{}
	wg    sync.WaitGroup
}

func newWatcher(conn *zkconn.Conn, trigger func(), log *zap.Logger) *watcher {
	return &watcher{conn: conn, trigger: trigger, log: log, armed: map[string]bool{}}
}

// start begins a term's watching: nothing is armed yet.
func (w *watcher) start() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.armed = map[string]bool{}
	w.quit = make(chan struct{})
	events, unsubscribe := w.conn.Subscribe()
	quit := w.quit
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer unsubscribe()
		for {
			select {
			case <-quit:
				return
			case ev := <-events:
				if ev.Type == zk.EventSession && ev.State == zk.StateHasSession {
					w.mu.Lock()
					w.armed = map[string]bool{}
					w.mu.Unlock()
					w.trigger()
				}
			}
		}
	}()
}

// stop ends the watching; the watches set stay on the server until they
// fire, and fire into nothing.
func (w *watcher) stop() {
	w.mu.Lock()
	quit := w.quit
	w.quit = nil
	w.mu.Unlock()
	if quit != nil {
		close(quit)
	}
	w.wg.Wait()
}

// claim marks key armed and reports whether the caller should arm it.
func (w *watcher) claim(key string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.quit == nil || w.armed[key] {
		return false
	}
	w.armed[key] = true
	return true
}

func (w *watcher) release(key string) {
	w.mu.Lock()
	delete(w.armed, key)
	w.mu.Unlock()
}

// await waits for a watch to fire, then disarms its key and triggers.
func (w *watcher) await(key string, ch <-chan zk.Event) {
	w.mu.Lock()
	quit := w.quit
	w.mu.Unlock()
	if quit == nil {
		w.release(key)
		return
	}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		select {
		case <-ch:
			w.release(key)
			w.trigger()
		case <-quit:
		}
	}()
}

// Children lists p's children, watching them when not watched yet. A
// missing directory is watched for its creation.
func (w *watcher) Children(p string) ([]string, error) {
	key := "c:" + p
	if !w.claim(key) {
		ch, _, err := w.conn.Children(p)
		return ch, err
	}
	children, _, ch, err := w.conn.ChildrenW(p)
	if errors.Is(err, zk.ErrNoNode) {
		w.existsWatch(key, p)
		return nil, err
	}
	if err != nil {
		w.release(key)
		return nil, err
	}
	w.await(key, ch)
	return children, nil
}

// Get reads p, watching its data when not watched yet.
func (w *watcher) Get(p string) ([]byte, error) {
	key := "d:" + p
	if !w.claim(key) {
		data, _, err := w.conn.Get(p)
		return data, err
	}
	data, _, ch, err := w.conn.GetW(p)
	if errors.Is(err, zk.ErrNoNode) {
		w.existsWatch(key, p)
		return nil, err
	}
	if err != nil {
		w.release(key)
		return nil, err
	}
	w.await(key, ch)
	return data, nil
}

// existsWatch watches a missing node for its creation, under key.
func (w *watcher) existsWatch(key, p string) {
	ok, _, ch, err := w.conn.ExistsW(p)
	switch {
	case err != nil:
		w.release(key)
	case ok:
		// Created meanwhile: the next read arms the real watch.
		w.release(key)
		w.trigger()
	default:
		w.await(key, ch)
	}
}
