package maintenance

import (
	"context"

	"github.com/jobengine/jobengine/engine/index"
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
