package maintenance

import (
	"context"

	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// PumpName names the index pump service.
const PumpName = "index-pump"

func init() { register(PumpName, newPump) }

// newPump runs the index pump (engine/index) on the elected member, when
// this member has Elasticsearch; the pump takes no lock of its own.
func newPump(cfg Config) (Service, error) {
	if cfg.Index == nil {
		return nil, nil
	}
	opts := cfg.Pump
	if opts.Name == "" {
		opts.Name = cfg.Identifier
	}
	return &pump{p: index.NewPump(cfg.Conn, cfg.Index, cfg.Logger.Named("index"), opts)}, nil
}

type pump struct {
	p *index.Pump
	worker
}

func (s *pump) Name() string { return PumpName }

func (s *pump) Start(ctx context.Context) error {
	return s.start(ctx, func(ctx context.Context) { _ = s.p.Run(ctx) })
}

func (s *pump) Stop() { s.stop() }

// warnUnpumped logs, on a leader without Elasticsearch, when the cluster
// indexes (the outbox exists): nothing empties the outbox while this member
// leads, which is a configuration mistake worth one loud line per term.
func warnUnpumped(ctx context.Context, cfg Config, log *zap.Logger) {
	if cfg.Index != nil {
		return
	}
	var indexing bool
	err := zkconn.Do(ctx, func() error {
		var err error
		indexing, _, err = cfg.Conn.Exists(index.OutboxPath(cfg.Conn))
		return err
	})
	if err == nil && indexing {
		log.Warn("the cluster indexes into Elasticsearch but this member has no Elasticsearch settings: "+
			"the outbox is not indexed while it leads the maintenance services (give every distributor --es-hosts)",
			zap.String("outbox", index.OutboxPath(cfg.Conn)))
	}
}
