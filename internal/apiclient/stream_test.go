package apiclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/wardenhq/warden"
)

func TestReadEvents(t *testing.T) {
	body := ": keep-alive\n" +
		"event: lease\ndata: {\"lease_seconds\":30}\n\n" +
		"id: 7\nevent:audit\ndata: line one\ndata: line two\n\n" +
		"data: unnamed\n\n" +
		"id: 8\n\n" + // no data, no name: not an event, but the id stays
		"data:after\n\n" +
		"retry: 100\n" // an event cut off by the end of the body is not delivered
	var got []string
	err := ReadEvents(strings.NewReader(body), func(ev Event) error {
		got = append(got, fmt.Sprintf("%q %q %q %v", ev.ID, ev.Name, ev.Data, ev.Comment))
		return nil
	})
	want := []string{
		`"" "" "keep-alive" true`,
		`"" "lease" "{\"lease_seconds\":30}" false`,
		`"7" "audit" "line one\nline two" false`,
		`"7" "message" "unnamed" false`,
		`"8" "message" "after" false`,
	}
	if err != nil || strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("ReadEvents: %v\n%s\nwant\n%s", err, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	stop := errors.New("stop")
	if err := ReadEvents(strings.NewReader(body), func(Event) error { return stop }); err != stop {
		t.Fatalf("a handler's error: %v", err)
	}
	// A line over MaxEvent is an error, not an event cut short.
	long := "data: " + strings.Repeat("x", MaxEvent) + "\n\n"
	if err := ReadEvents(strings.NewReader(long), func(Event) error { t.Fatal("an event over the bound was delivered"); return nil }); err == nil {
		t.Fatal("no error for a line over MaxEvent")
	}
}

// TestRunnerControl reads a runner's control stream from a real server: the events the server
// sends, in order, and the refusal of a stream the server will not open.
func TestRunnerControl(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer agent" || r.Header.Get("Accept") != "text/event-stream" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if r.URL.Path != "/v1/runners/run_1/control" {
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"error":{"code":"not_found","message":"no runner \"run_2\" of this agent"}}`))
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "event: lease\ndata: {\"lease_seconds\":30}\n\n: ping\n\nevent: terminate\ndata: {\"reason\":\"killed: INC-1\"}\n\nevent: lease\ndata: {}\n\n")
	})
	c := &Client{Base: srv.URL, HTTP: srv.Client(), Token: StaticToken("agent")}
	opened := false
	var got []string
	err := c.RunnerControl(context.Background(), "run_1", func() { opened = true }, func(ev ControlEvent) error {
		got = append(got, fmt.Sprintf("%s %d %q", ev.Name, ev.LeaseSeconds, ev.Reason))
		if ev.Name == "terminate" {
			return ErrStop
		}
		return nil
	})
	want := `lease 30 ""|comment 0 ""|terminate 0 "killed: INC-1"`
	if err != nil || !opened || strings.Join(got, "|") != want {
		t.Fatalf("control: %v opened %v %s; want %s", err, opened, strings.Join(got, "|"), want)
	}
	opened = false
	err = c.RunnerControl(context.Background(), "run_2", func() { opened = true }, func(ControlEvent) error { return nil })
	if opened || Status(err) != http.StatusNotFound || warden.ErrorMessage(err) != `no runner "run_2" of this agent` {
		t.Fatalf("a stream the server refuses: %v opened %v", err, opened)
	}
}

// TestFollowAudit follows the audit stream across a dropped connection: it resumes with
// Last-Event-ID, so no event is missed or repeated, and stops with the handler's error.
func TestFollowAudit(t *testing.T) {
	var conns atomic.Int32
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/audit/stream" || r.URL.Query().Get("agent") != "bot" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		after := r.Header.Get("Last-Event-ID")
		switch conns.Add(1) {
		case 1:
			if after != "" {
				t.Errorf("first connection with Last-Event-ID %q", after)
			}
			for seq := 1; seq <= 2; seq++ {
				b, _ := json.Marshal(warden.AuditEvent{Seq: int64(seq), Type: "tool.call"})
				fmt.Fprintf(w, "id: %d\nevent: audit\ndata: %s\n\n", seq, b)
			}
			// The connection drops here.
		default:
			if after != "2" {
				t.Errorf("reconnected with Last-Event-ID %q, want 2", after)
			}
			fmt.Fprint(w, ": ping\n\nevent: other\ndata: {}\n\n")
			b, _ := json.Marshal(warden.AuditEvent{Seq: 3, Type: "tool.call"})
			fmt.Fprintf(w, "id: 3\nevent: audit\ndata: %s\n\n", b)
		}
	})
	c := &Client{Base: srv.URL, HTTP: srv.Client()}
	var seqs []int64
	done := errors.New("done")
	err := c.FollowAudit(context.Background(), url.Values{"agent": {"bot"}}, func(ev *warden.AuditEvent) error {
		seqs = append(seqs, ev.Seq)
		if ev.Seq == 3 {
			return done
		}
		return nil
	})
	if err != done || fmt.Sprint(seqs) != "[1 2 3]" || conns.Load() != 2 {
		t.Fatalf("follow: %v, seqs %v over %d connections", err, seqs, conns.Load())
	}
	// A refusal ends it at once.
	err = c.FollowAudit(context.Background(), url.Values{"agent": {"other"}}, func(*warden.AuditEvent) error { return nil })
	if warden.ErrorCode(err) != warden.EInvalid {
		t.Fatalf("refused stream: %v", err)
	}
}

// FuzzReadEvents: any body is read without a panic, and every event has a name.
func FuzzReadEvents(f *testing.F) {
	f.Add("event: lease\ndata: {\"lease_seconds\":30}\n\n")
	f.Add(": ping\n\nid: 1\ndata: a\ndata: b\n\n")
	f.Add("data\nid\nevent\n\n:\n\n")
	f.Add("\r\n\r\ndata: x\r\n\r\n")
	f.Fuzz(func(t *testing.T, body string) {
		_ = ReadEvents(strings.NewReader(body), func(ev Event) error {
			if !ev.Comment && ev.Name == "" {
				t.Fatalf("an event without a name: %+v", ev)
			}
			return nil
		})
	})
}

// FuzzError: any error answer becomes a *warden.Error with a code, a message and its status.
func FuzzError(f *testing.F) {
	f.Add(404, []byte(`{"error":{"code":"not_found","message":"no agent"}}`))
	f.Add(400, []byte(`{"error":"invalid_grant","error_description":"expired"}`))
	f.Add(500, []byte(`<html>`))
	f.Add(401, []byte(`{"error":{"code":"","message":""}}`))
	f.Add(418, []byte(`{"error":null}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		err := Error(status, body)
		var we *warden.Error
		if !errors.As(err, &we) || we.Code == "" || we.Message == "" || Status(err) != status {
			t.Fatalf("Error(%d, %q) = %#v", status, body, err)
		}
	})
}
