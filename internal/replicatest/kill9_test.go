package replicatest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
)

// fleetLoad sends echo calls through every replica, each with a trace id of its own, and
// remembers the trace ids of the calls that succeeded: an allowed call's audit event carries it.
type fleetLoad struct {
	f     *Fleet
	token string
	stop  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup

	mu sync.Mutex
	ok map[string]int // trace id → replica index, for every call that answered 200
	// okAfter counts, per replica, the calls that succeeded after the mark was set.
	okAfter []atomic.Int64
	okAll   []atomic.Int64
	marked  atomic.Bool
	changed chan struct{}
}

func startFleetLoad(ctx context.Context, f *Fleet, token string, workers int) *fleetLoad {
	ld := &fleetLoad{f: f, token: token, stop: make(chan struct{}), ok: map[string]int{},
		okAfter: make([]atomic.Int64, len(f.Replicas)), okAll: make([]atomic.Int64, len(f.Replicas)), changed: make(chan struct{})}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	for i := range f.Replicas {
		for range workers {
			ld.wg.Add(1)
			go func() {
				defer ld.wg.Done()
				for {
					select {
					case <-ld.stop:
						return
					default:
					}
					ld.call(ctx, hc, i)
				}
			}()
		}
	}
	return ld
}

func (ld *fleetLoad) call(ctx context.Context, hc *http.Client, i int) {
	b := make([]byte, 16)
	rand.Read(b)
	trace := hex.EncodeToString(b)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ld.f.Replicas[i].URL+"/http/"+HTTPTool+"/echo", nil)
	if err != nil {
		return
	}
	req.Header.Set("Authorization", "Bearer "+ld.token)
	req.Header.Set("Traceparent", "00-"+trace+"-0000000000000001-01")
	resp, err := hc.Do(req)
	if err != nil {
		// A replica killed with SIGKILL refuses connections: the client sees no answer,
		// which is not a call it saw allowed. Do not spin on a dead port.
		select {
		case <-ld.stop:
		case <-time.After(20 * time.Millisecond):
		}
		return
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return
	}
	marked := ld.marked.Load()
	ld.mu.Lock()
	ld.ok[trace] = i
	ld.okAll[i].Add(1)
	if marked {
		ld.okAfter[i].Add(1)
	}
	close(ld.changed)
	ld.changed = make(chan struct{})
	ld.mu.Unlock()
}

// waitFor waits until cond holds of the counts, or ctx ends.
func (ld *fleetLoad) waitFor(ctx context.Context, cond func() bool) error {
	for {
		ld.mu.Lock()
		ok, ch := cond(), ld.changed
		ld.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (ld *fleetLoad) halt() {
	ld.once.Do(func() { close(ld.stop) })
	ld.wg.Wait()
}

// TestKill9DuringLoad: three replicas under load, one killed with SIGKILL. The others keep
// serving, the audit chain verifies, every call a client saw allowed — on the killed replica
// too — has its tool.call event in the shared log, and the killed replica restarts and serves.
func TestKill9DuringLoad(t *testing.T) {
	f := Start(t, Options{})
	ctx := t.Context()
	up := StartUpstream(t)
	a := f.Setup(ctx, up, "loaded")[0]
	token := f.AgentToken(ctx, 0, a)
	for i := range f.Replicas {
		if err := f.WaitEcho(ctx, i, token, http.StatusOK); err != nil {
			t.Fatal(err)
		}
	}

	ld := startFleetLoad(ctx, f, token, 4)
	defer ld.halt()
	const each = 40
	waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := ld.waitFor(waitCtx, func() bool {
		return ld.okAll[0].Load() >= each && ld.okAll[1].Load() >= each && ld.okAll[2].Load() >= each
	}); err != nil {
		t.Fatalf("the load never reached %d successful calls on each replica: %d, %d, %d", each, ld.okAll[0].Load(), ld.okAll[1].Load(), ld.okAll[2].Load())
	}
	f.Kill9(2)
	ld.marked.Store(true)
	if err := ld.waitFor(waitCtx, func() bool { return ld.okAfter[0].Load() >= each && ld.okAfter[1].Load() >= each }); err != nil {
		t.Fatalf("after r3 was killed, r1 and r2 did not keep serving: %d and %d calls succeeded", ld.okAfter[0].Load(), ld.okAfter[1].Load())
	}
	ld.halt()
	if n := ld.okAfter[2].Load(); n != 0 {
		t.Errorf("%d calls succeeded on r3 after it was killed with SIGKILL", n)
	}

	rep, err := f.Client(0).VerifyAudit(ctx, apitype.VerifyRequest{})
	if err != nil {
		t.Fatalf("audit verify through r1: %v", err)
	}
	if !rep.OK {
		t.Errorf("the audit chain does not verify after a replica was killed: %+v", rep)
	}

	// The killed replica comes back on its data directory and serves again.
	f.Restart(2)
	if err := f.WaitEcho(ctx, 2, token, http.StatusOK); err != nil {
		t.Errorf("r3 after its restart: %v", err)
	}
	if rep, err := f.Client(2).VerifyAudit(ctx, apitype.VerifyRequest{}); err != nil || !rep.OK {
		t.Errorf("audit verify through r3 after its restart: %+v %v", rep, err)
	}

	recorded := allowedTraces(t, f, 0, a.Name)
	lost := map[string]int{}
	for trace, i := range ld.ok {
		if !recorded[trace] {
			lost[f.Replicas[i].ID]++
		}
	}
	t.Logf("%d calls succeeded (r1 %d, r2 %d, r3 %d before it was killed)", len(ld.ok), ld.okAll[0].Load(), ld.okAll[1].Load(), ld.okAll[2].Load())
	if len(lost) > 0 {
		t.Errorf("calls the client saw allowed have no tool.call event (by replica): %v", lost)
	}
}

// allowedTraces returns the trace ids of every allowed tool.call event of agent, read through
// replica i page by page.
func allowedTraces(t *testing.T, f *Fleet, i int, agent string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	var after int64
	for {
		q := url.Values{"type": {warden.EventToolCall}, "agent": {agent}, "decision": {warden.EffectAllow}, "limit": {"1000"}}
		if after > 0 {
			q.Set("after", fmt.Sprint(after))
		}
		evs, _, err := f.Client(i).AuditEvents(t.Context(), q)
		if err != nil {
			t.Fatalf("audit events: %v", err)
		}
		for _, ev := range evs {
			out[ev.TraceID] = true
		}
		if len(evs) < 1000 {
			return out
		}
		after = evs[len(evs)-1].Seq
	}
}
