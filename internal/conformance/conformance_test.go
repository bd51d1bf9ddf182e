package conformance_test

import (
	"testing"

	"github.com/xbt-tracker/xbt-tracker/internal/conformance"
)

// The Go API, encoded with httpfront's encoders.
func TestAPI(t *testing.T) { conformance.Run(t, conformance.NewAPIClient) }

// Real HTTP requests to an httpfront.Server over 127.0.0.1 and [::1].
func TestHTTP(t *testing.T) { conformance.Run(t, conformance.NewHTTPClient) }

func TestHTTPGoroutinePerConn(t *testing.T) {
	conformance.Run(t, conformance.NewHTTPGoroutineClient)
}
