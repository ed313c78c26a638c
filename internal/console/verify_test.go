package console

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/apitype"
)

// slowVerifier checks 3 events, then waits for release before it reports.
type slowVerifier struct {
	checking chan struct{} // closed once the events are checked
	release  chan struct{}
}

func (s *slowVerifier) Head(context.Context) (int64, error) { return 10, nil }

func (s *slowVerifier) VerifyProgress(ctx context.Context, progress func(int64)) (*apitype.VerifyReport, error) {
	for i := int64(1); i <= 3; i++ {
		progress(i)
	}
	close(s.checking)
	select {
	case <-s.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return &apitype.VerifyReport{OK: true, Events: 10}, nil
}

// TestVerificationsOneAtATime: a verification asked for runs on RunVerifications' goroutine and
// shows its progress (events checked of the head); while it runs another is refused; once done
// its report is kept and another may be asked for.
func TestVerificationsOneAtATime(t *testing.T) {
	sv := &slowVerifier{checking: make(chan struct{}), release: make(chan struct{})}
	c := &Console{opt: Options{Verifier: sv, Log: slog.New(slog.DiscardHandler)}, verify: newVerifications()}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- c.RunVerifications(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	if st := c.verify.status(); st.State != verifyIdle || st.Active() {
		t.Fatalf("before any: %+v", st)
	}
	if !c.verify.request("alice", time.Unix(1, 0)) {
		t.Fatal("the first verification was refused")
	}
	<-sv.checking
	st := c.verify.status()
	if st.State != verifyRunning || st.Checked != 3 || st.Total != 10 || st.By != "alice" {
		t.Fatalf("while running: %+v", st)
	}
	if c.verify.request("bob", time.Unix(2, 0)) {
		t.Fatal("a second verification was let in while one runs")
	}
	if st := c.verify.status(); st.By != "alice" {
		t.Fatalf("the refused request changed the running one: %+v", st)
	}
	close(sv.release)
	for st = c.verify.status(); st.Active(); st = c.verify.status() {
		time.Sleep(time.Millisecond) // as the audit page polls its status
	}
	if st.State != verifyDone || st.Report == nil || !st.Report.OK || st.Checked != 10 {
		t.Fatalf("after it: %+v", st)
	}
	sv.checking, sv.release = make(chan struct{}), make(chan struct{})
	if !c.verify.request("bob", time.Unix(3, 0)) {
		t.Fatal("a verification after the last one ended was refused")
	}
	<-sv.checking
	close(sv.release)
}
