package template

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/configstore"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// Store reads and writes templates at /config/templates/<name>.
type Store struct {
	objs *configstore.Store
	now  func() time.Time
}

// NewStore returns the template store on conn.
func NewStore(conn *zkconn.Conn, log *zap.Logger) *Store {
	return &Store{objs: configstore.New(conn, "templates", log), now: time.Now}
}

// Get reads a template and its version.
func (s *Store) Get(ctx context.Context, name string) (*Template, int32, error) {
	var t Template
	ver, err := s.objs.Get(ctx, name, &t)
	if err != nil {
		return nil, 0, err
	}
	return &t, ver, nil
}

// List reads every template; bad ones are returned as errors.
func (s *Store) List(ctx context.Context) ([]*Template, []error, error) {
	return configstore.List[Template](ctx, s.objs)
}

// Create stores a new template.
func (s *Store) Create(ctx context.Context, t *Template) error {
	now := s.now().UTC()
	t.Created, t.Updated = now, now
	return s.objs.Create(ctx, t)
}

// Update writes t over version ver.
func (s *Store) Update(ctx context.Context, t *Template, ver int32) error {
	t.Updated = s.now().UTC()
	return s.objs.Update(ctx, t, ver)
}

// Delete removes a template.
func (s *Store) Delete(ctx context.Context, name string) error {
	return s.objs.Delete(ctx, name, -1)
}
