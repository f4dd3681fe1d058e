package backoff

import (
	"context"
	"testing"
	"time"
)

func TestGrowsToTheCapWithJitterAndResets(t *testing.T) {
	b := New(100*time.Millisecond, time.Second)
	for i, want := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		want *= time.Millisecond
		d := b.Next()
		if d < want/2 || d > want {
			t.Fatalf("wait %d = %s, want in [%s, %s]", i, d, want/2, want)
		}
	}
	if b.Failures() != 6 {
		t.Fatalf("failures = %d", b.Failures())
	}
	b.Reset()
	if d := b.Next(); d > 100*time.Millisecond {
		t.Fatalf("after reset: %s", d)
	}
}

func TestWaitEndsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if New(time.Hour, time.Hour).Wait(ctx) {
		t.Fatal("Wait reported a full wait on an ended context")
	}
}

func TestJitterBounds(t *testing.T) {
	for range 1000 {
		if d := Jitter(time.Second); d < 500*time.Millisecond || d >= 1500*time.Millisecond {
			t.Fatalf("jitter %s out of [0.5s, 1.5s)", d)
		}
	}
	if Jitter(0) != 0 {
		t.Fatal("jitter of 0")
	}
}
