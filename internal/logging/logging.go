package logging

import (
	"fmt"
	"os"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// New returns a logger writing to w at the given level ("debug", "info",
// "warn" or "error"). Console encoding is chosen when w is a terminal, JSON
// otherwise, so `xbt-tracker serve | jq` and systemd's journal both work.
func New(level string, w *os.File) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("log_level = %q: want debug, info, warn or error", level)
	}
	return NewWithEncoding(lvl, w, isTerminal(w)), nil
}

// NewWithEncoding is New with the encoding decided by the caller.
func NewWithEncoding(lvl zapcore.Level, w zapcore.WriteSyncer, console bool) *zap.Logger {
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	if console {
		encCfg.EncodeLevel = zapcore.CapitalColorLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	} else {
		enc = zapcore.NewJSONEncoder(encCfg)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.Lock(w), lvl))
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
