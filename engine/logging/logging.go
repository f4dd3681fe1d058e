// Package logging builds the engine's zap loggers: console or JSON, to
// stderr or to a file rotated by lumberjack.
//
// Level policy: Debug is per-item chatter (every take, every listing);
// Info is one line per job state change and per lifecycle event of a
// daemon; Warn is a fault the engine handles by itself (ZooKeeper lost, a
// plugin killed, a retry); Error is something an operator must look at.
package logging

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"gopkg.in/natefinch/lumberjack.v2"
)

// Keys of the JSON format, for programs that read the logs back.
const (
	TimeKey    = "time" // ISO 8601 with the zone
	MessageKey = "msg"  // the line's message
)

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("logging: bad configuration")

// Config says where and how to log.
type Config struct {
	Format     string // "console" (default) or "json"
	Level      string // "debug", "info" (default), "warn", "error"
	File       string // empty: stderr
	MaxSizeMB  int    // rotation size (default 10)
	MaxBackups int    // rotated files kept (default 5)
}

// Check reports a format or level New would refuse, without opening the
// log file.
func (cfg Config) Check() error {
	_, err := cfg.level()
	if err != nil {
		return err
	}
	switch cfg.Format {
	case "", "console", "json":
		return nil
	}
	return fmt.Errorf("%w: log format %q (want console or json)", ErrConfig, cfg.Format)
}

func (cfg Config) level() (zapcore.Level, error) {
	var level zapcore.Level
	if cfg.Level == "" {
		return zapcore.InfoLevel, nil
	}
	if err := level.UnmarshalText([]byte(cfg.Level)); err != nil {
		return level, fmt.Errorf("%w: log level %q (want debug, info, warn or error)", ErrConfig, cfg.Level)
	}
	return level, nil
}

// New builds a logger. A log file that cannot be opened is an error here,
// at start-up, not a silent loss of logs later.
func New(cfg Config) (*zap.Logger, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	level, err := cfg.level()
	if err != nil {
		return nil, err
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.TimeKey = TimeKey
	encCfg.MessageKey = MessageKey
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	switch cfg.Format {
	case "", "console":
		encCfg.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	default: // "json", as Check made sure
		enc = zapcore.NewJSONEncoder(encCfg)
	}
	var out zapcore.WriteSyncer
	if cfg.File == "" {
		out = zapcore.Lock(os.Stderr)
	} else {
		if cfg.MaxSizeMB <= 0 {
			cfg.MaxSizeMB = 10
		}
		if cfg.MaxBackups <= 0 {
			cfg.MaxBackups = 5
		}
		if err := os.MkdirAll(filepath.Dir(cfg.File), 0o755); err != nil {
			return nil, fmt.Errorf("%w: log file %s: %v", ErrConfig, cfg.File, err)
		}
		f, err := os.OpenFile(cfg.File, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("%w: log file %s cannot be written: %v (check --log-file and the directory's owner)", ErrConfig, cfg.File, err)
		}
		f.Close()
		out = zapcore.AddSync(&lumberjack.Logger{Filename: cfg.File, MaxSize: cfg.MaxSizeMB, MaxBackups: cfg.MaxBackups})
	}
	return zap.New(zapcore.NewCore(enc, out, level)), nil
}
