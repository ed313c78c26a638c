package replicatest

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/apitype"
)

// replicas reads GET /v1/replicas through replica i.
func (f *Fleet) replicas(ctx context.Context, i int) (*apitype.Replicas, error) {
	var out apitype.Replicas
	return &out, f.Client(i).Do(ctx, http.MethodGet, "/v1/replicas", nil, &out)
}

// TestReplicasAndADeadOne: GET /v1/replicas and `warden replicas` list the three replicas, live
// and fresh, the answering one marked as itself. When r3 is killed with SIGKILL, a kill sent to
// r1 still returns — after killswitch.ack_timeout at most, with r2's acknowledgement and r3
// named as not answering — and r3 is soon listed as not live.
func TestReplicasAndADeadOne(t *testing.T) {
	const ackTimeout = 500 * time.Millisecond
	f := Start(t, Options{Config: fmt.Sprintf("killswitch:\n  ack_timeout: %s\n", ackTimeout)})
	ctx := t.Context()
	up := StartUpstream(t)
	agents := f.Setup(ctx, up, "first", "second")

	deadline := time.Now().Add(10 * time.Second)
	for {
		list, err := f.replicas(ctx, 1)
		if err != nil {
			t.Fatalf("GET /v1/replicas through r2: %v", err)
		}
		ok := len(list.Replicas) == len(f.Replicas)
		for _, r := range f.Replicas {
			i := slices.IndexFunc(list.Replicas, func(x apitype.Replica) bool { return x.ID == r.ID })
			ok = ok && i >= 0 && list.Replicas[i].Live && list.Replicas[i].Fresh && list.Replicas[i].Self == (r.ID == "r2")
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /v1/replicas through r2 never listed r1, r2, r3 live and fresh with r2 as itself: %+v", list)
		}
		time.Sleep(100 * time.Millisecond) // heartbeats are on their own interval; nothing to await
	}
	out, err := f.CLI(0, "replicas")
	if err != nil {
		t.Errorf("warden replicas: %v", err)
	}
	for _, r := range f.Replicas {
		if !strings.Contains(out, r.ID) {
			t.Errorf("warden replicas does not list %s:\n%s", r.ID, out)
		}
	}

	f.Kill9(2)
	sent := time.Now()
	rep, err := f.Client(0).Kill(ctx, agents[0].Name, apitype.KillRequest{Reason: "replicatest: a replica is dead"})
	took := time.Since(sent)
	if err != nil {
		t.Fatalf("kill with r3 dead: %v", err)
	}
	if took > ackTimeout+2*time.Second {
		t.Errorf("kill with r3 dead returned after %s; killswitch.ack_timeout is %s", took, ackTimeout)
	}
	acks := map[string]apitype.ReplicaAck{}
	for _, a := range rep.Replicas {
		acks[a.ID] = a
	}
	if !acks["r2"].Acked {
		t.Errorf("r2 did not acknowledge: %+v", rep.Replicas)
	}
	if a, named := acks["r3"]; !named || a.Acked || a.Error == "" {
		t.Errorf("the report does not name r3 as not answering, with why: %+v", rep.Replicas)
	}

	deadline = time.Now().Add(10 * time.Second)
	for {
		list, err := f.replicas(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(list.Replicas, func(x apitype.Replica) bool { return x.ID == "r3" })
		if i >= 0 && !list.Replicas[i].Live {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("r3 is still listed live 10 s after it was killed: %+v", list)
		}
		time.Sleep(100 * time.Millisecond) // a heartbeat ages on its own; nothing to await
	}
	rep, err = f.Client(0).Kill(ctx, agents[1].Name, apitype.KillRequest{Reason: "replicatest: r3 is not live"})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range rep.Replicas {
		if a.ID == "r2" && !a.Acked {
			t.Errorf("r2 did not acknowledge the second kill: %+v", rep.Replicas)
		}
	}
}
