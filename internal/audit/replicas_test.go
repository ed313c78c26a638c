package audit_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/checkpoint"
	"github.com/wardenhq/warden/internal/postgres"
)

// TestReplicasShareOneChain runs three replicas' logs on one PostgreSQL database, appending at
// once: the chain comes out whole — seqs without gaps or repeats, every link right — and every
// replica's checkpoints verify. It needs WARDEN_TEST_POSTGRES, like the store tests.
func TestReplicasShareOneChain(t *testing.T) {
	t.Parallel()
	server := os.Getenv("WARDEN_TEST_POSTGRES")
	if server == "" {
		t.Skip("WARDEN_TEST_POSTGRES is not set; set it to a postgres:// URL to run the PostgreSQL tests")
	}
	admin, err := sql.Open("pgx", server)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	b := make([]byte, 8)
	rand.Read(b)
	name := "warden_audit_test_" + hex.EncodeToString(b)
	if _, err := admin.Exec(`CREATE DATABASE ` + name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Exec(`DROP DATABASE IF EXISTS ` + name + ` WITH (FORCE)`) })
	u, _ := url.Parse(server)
	u.Path = "/" + name

	const replicas, each = 3, 200
	master := make([]byte, 32)
	logs := make([]*audit.Log, replicas)
	var stores []*postgres.Store
	for i := range replicas {
		s, err := postgres.Open(t.Context(), u.String())
		if err != nil {
			t.Fatal(err)
		}
		stores = append(stores, s)
		t.Cleanup(func() { s.Close() })
		keys, err := checkpoint.LoadOrCreate(t.Context(), s, master, "replicas.example/audit", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		logs[i] = audit.New(s, audit.Options{Replica: string(rune('a' + i)), Keys: keys})
		t.Cleanup(func() { logs[i].Close() })
	}
	var wg sync.WaitGroup
	for i, l := range logs {
		for w := range 10 {
			wg.Go(func() {
				for n := range each / 10 {
					if err := l.Append(context.Background(), event(w*100+n)); err != nil {
						t.Error(err)
						return
					}
					if n%7 == 0 {
						if _, err := l.Checkpoint(context.Background()); err != nil {
							t.Errorf("replica %d checkpoint: %v", i, err)
						}
					}
				}
			})
		}
	}
	wg.Wait()
	keys, err := stores[0].AuditKeys(t.Context())
	if err != nil || len(keys) != 1 {
		t.Fatalf("replicas agreed on %d checkpoint keys (%v); want 1", len(keys), err)
	}
	verifiers, _ := checkpoint.Verifiers(keys)
	r, err := audit.Verify(t.Context(), stores[0], audit.VerifyOptions{Verifiers: verifiers})
	if err != nil || !r.OK || r.Events != replicas*each || r.Checkpoints == 0 {
		t.Fatalf("verify: %+v %+v %v", r, r.Break, err)
	}
	evs, _ := stores[0].AuditEvents(t.Context(), warden.AuditFilter{Limit: 1000})
	seen := map[string]bool{}
	for _, ev := range evs {
		seen[ev.Actor.Replica] = true
	}
	if len(seen) != replicas {
		t.Fatalf("events from replicas %v", seen)
	}
}
