package logging

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"go.uber.org/zap/zapcore"
)

func TestNewRejectsUnknownLevel(t *testing.T) {
	_, err := New("loud", os.Stderr)
	if err == nil || !strings.Contains(err.Error(), `log_level = "loud"`) {
		t.Fatalf("want an error naming log_level, got %v", err)
	}
}

func TestJSONWhenNotATerminal(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "log")
	if err != nil {
		t.Fatal(err)
	}
	lg, err := New("info", f)
	if err != nil {
		t.Fatal(err)
	}
	lg.Debug("hidden")
	lg.Info("shown", zapcore.Field{Key: "k", Type: zapcore.StringType, String: "v"})
	_ = lg.Sync()
	data, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSpace(data), []byte("\n"))
	if len(lines) != 1 {
		t.Fatalf("want exactly the info line, got %q", data)
	}
	var m map[string]any
	if err := json.Unmarshal(lines[0], &m); err != nil {
		t.Fatalf("not JSON: %q: %v", lines[0], err)
	}
	if m["msg"] != "shown" || m["k"] != "v" || m["level"] != "info" {
		t.Fatalf("unexpected record %v", m)
	}
}
