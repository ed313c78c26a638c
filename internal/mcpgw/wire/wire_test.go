package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
)

var messageSeeds = []string{
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"up.echo","arguments":{"text":"hi"}}}`,
	`{"jsonrpc":"2.0","id":"a-1","method":"tools/list"}`,
	`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
	`{"jsonrpc":"2.0","id":null,"method":"ping"}`,
	`{"jsonrpc":"2.0","id":1,"result":{}}`,
	`{"jsonrpc":"2.0","id":"warden-r1","error":{"code":-1,"message":"no"}}`,
	`[{"jsonrpc":"2.0","id":1,"method":"ping"}]`,
	`{"jsonrpc":"2.0","id":1,"method":"p\u0069ng"}`,
	`{`, ``, `null`, `[]`, `"\u0000"`,
}

// The cheap reading of a message must never accept what the SDK's decoder refuses, and must
// take the common messages.
func TestParseAgreesWithTheSDK(t *testing.T) {
	for _, c := range []struct {
		body  string
		plain bool
	}{
		{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"up.echo","arguments":{"text":"hi"}}}`, true},
		{`{"jsonrpc":"2.0","id":"a-1","method":"tools/list"}`, true},
		{`{"jsonrpc":"2.0","method":"notifications/initialized"}`, true},
		{`{"jsonrpc":"2.0","id":null,"method":"ping"}`, true},
		{`{"jsonrpc":"2.0","id":-7,"method":"ping","params":null}`, true},
		{`{"jsonrpc":"1.0","id":1,"method":"ping"}`, false},
		{`{"id":1,"method":"ping"}`, false},
		{`{"jsonrpc":"2.0","id":1}`, false},
		{`{"jsonrpc":"2.0","id":1,"result":{}}`, true},
		{`{"jsonrpc":"2.0","id":"warden-r1","error":{"code":-1,"message":"no"}}`, true},
		{`{"jsonrpc":"2.0","id":1,"result":{},"error":{"code":-1,"message":"no"}}`, false},
		{`{"jsonrpc":"2.0","id":1,"error":5}`, false},
		{`{"jsonrpc":"2.0","result":{}}`, false},
		{`{"jsonrpc":"2.0","id":null,"result":{}}`, false},
		{`{"jsonrpc":"2.0","id":1,"method":"","params":{}}`, false},
		{`{"jsonrpc":"2.0","id":1,"method":"ping","result":{}}`, false},
		{`{"jsonrpc":"2.0","id":1.5,"method":"ping"}`, false},
		{`{"jsonrpc":"2.0","id":{},"method":"ping"}`, false},
		{`{"jsonrpc":"2.0","id":1,"method":3}`, false},
		{`{"jsonrpc":"2.0","id":1,"method":"p\u0069ng"}`, false},
		{`{"jsonrpc":"2.0","id":1,"method":"ping","Method":"x"}`, false},
		{`{"jsonrpc":"2.0","id":12345678901234567890,"method":"ping"}`, false},
		{`[{"jsonrpc":"2.0","id":1,"method":"ping"}]`, false},
		{`null`, false},
	} {
		if _, got := Parse([]byte(c.body)); got != c.plain {
			t.Errorf("Parse(%s) plain = %v, want %v", c.body, got, c.plain)
		}
		if c.plain {
			if _, err := jsonrpc.DecodeMessage([]byte(c.body)); err != nil {
				t.Errorf("Parse accepts %s, which the SDK refuses: %v", c.body, err)
			}
		}
	}
}

// FuzzParse holds that Parse accepts nothing the SDK's decoder refuses, and reads what it
// accepts as the SDK does (kind, method, id).
func FuzzParse(f *testing.F) {
	for _, s := range messageSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, ok := Parse(data)
		if !ok {
			return
		}
		msg, err := jsonrpc.DecodeMessage(data)
		if err != nil {
			t.Fatalf("Parse accepts %q, which the SDK refuses: %v", data, err)
		}
		switch msg := msg.(type) {
		case *jsonrpc.Request:
			if m.Method != msg.Method || m.IsResponse() {
				t.Fatalf("%q: method %q, the SDK read %q", data, m.Method, msg.Method)
			}
			if m.IsRequest() != msg.IsCall() {
				t.Fatalf("%q: request %v, the SDK read call %v", data, m.IsRequest(), msg.IsCall())
			}
		case *jsonrpc.Response:
			if !m.IsResponse() {
				t.Fatalf("%q: not read as a response", data)
			}
		}
		// What Parse read, written back, reads the same.
		again, ok := Parse(Append(nil, m.ID, m.Method, m.Params, m.Result, m.Error))
		if !ok || again.Method != m.Method || !SameID(again.ID, m.ID) {
			t.Fatalf("%q does not survive Append: %+v", data, again)
		}
	})
}

// FuzzRead holds that Read never panics and takes everything the SDK's decoder takes.
func FuzzRead(f *testing.F) {
	for _, s := range messageSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, ok := Read(data)
		msg, err := jsonrpc.DecodeMessage(data)
		if req, isReq := msg.(*jsonrpc.Request); err == nil && isReq && req.Method == "" {
			if ok {
				t.Fatalf("Read(%q) takes a request without a method", data)
			}
			return
		}
		if (err == nil) != ok {
			t.Fatalf("Read(%q) = %v, the SDK's decoder: %v", data, ok, err)
		}
		if ok {
			if _, isReq := msg.(*jsonrpc.Request); isReq == m.IsResponse() {
				t.Fatalf("Read(%q): kind differs from the SDK's", data)
			}
		}
	})
}

func TestCheck(t *testing.T) {
	for _, c := range []struct {
		body  string
		code  int64
		plain bool
	}{
		{`{"jsonrpc":"2.0","id":1,"method":"ping"}`, 0, true},
		{`  {"jsonrpc":"2.0","id":1,"method":"ping"}`, 0, true},
		{`{"jsonrpc":"2.0","id":1,"method":"p\u0069ng"}`, 0, false},
		{`[{"jsonrpc":"2.0","id":1,"method":"ping"}]`, 0, false},
		{`[]`, jsonrpc.CodeInvalidRequest, false},
		{`[1]`, jsonrpc.CodeInvalidRequest, false},
		{`{"id":1}`, jsonrpc.CodeInvalidRequest, false},
		{`{`, jsonrpc.CodeParseError, false},
		{``, jsonrpc.CodeParseError, false},
	} {
		_, plain, code, msg := Check([]byte(c.body))
		if code != c.code || plain != c.plain || (code != 0) != (msg != "") {
			t.Errorf("Check(%q) = plain %v, code %d %q; want plain %v, code %d", c.body, plain, code, msg, c.plain, c.code)
		}
	}
}

// FuzzCheck holds that Check never panics, answers every body with nothing or one of the two
// error codes and a message, and passes on only what the SDK's decoder reads.
func FuzzCheck(f *testing.F) {
	for _, s := range messageSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		_, plain, code, msg := Check(body)
		switch code {
		case 0:
			if msg != "" {
				t.Fatalf("Check(%q): message %q without a code", body, msg)
			}
			if trimmed := bytes.TrimLeft(body, " \t\r\n"); len(trimmed) > 0 && trimmed[0] != '[' {
				if _, err := jsonrpc.DecodeMessage(trimmed); err != nil {
					t.Fatalf("Check passes %q, which the SDK refuses: %v", body, err)
				}
			}
		case jsonrpc.CodeParseError, jsonrpc.CodeInvalidRequest:
			if msg == "" || plain {
				t.Fatalf("Check(%q): code %d, message %q, plain %v", body, code, msg, plain)
			}
		default:
			t.Fatalf("Check(%q): code %d", body, code)
		}
	})
}

// An SSE event handed to the SDK undecoded must not be a notification.
func TestMayBeNotification(t *testing.T) {
	for _, c := range []struct {
		data string
		want bool
	}{
		{`{"jsonrpc":"2.0","id":1,"result":{"content":[]}}`, false},
		{`{"jsonrpc":"2.0","id":2,"method":"sampling/createMessage","params":{}}`, false},
		{`{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"warden-1","progress":1}}`, true},
		{`{"jsonrpc":"2.0","id":null,"method":"notifications/message"}`, true},
		{`not json`, true},
	} {
		if got := MayBeNotification([]byte(c.data)); got != c.want {
			t.Errorf("MayBeNotification(%s) = %v, want %v", c.data, got, c.want)
		}
	}
}

// FuzzMayBeNotification holds that no message the SDK reads as a notification is called
// surely not one.
func FuzzMayBeNotification(f *testing.F) {
	for _, s := range messageSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := jsonrpc.DecodeMessage(data)
		if err != nil {
			return
		}
		if req, ok := msg.(*jsonrpc.Request); ok && !req.IsCall() && !MayBeNotification(data) {
			t.Fatalf("%q is a notification to the SDK", data)
		}
	})
}

func TestParseCallParams(t *testing.T) {
	for _, c := range []struct {
		params string
		ok     bool
		want   CallParams
	}{
		{`{"name":"echo"}`, true, CallParams{Name: "echo"}},
		{`{"name":"echo","arguments":{"a":1},"_meta":{"progressToken":1}}`, true,
			CallParams{Name: "echo", Args: json.RawMessage(`{"a":1}`), Meta: json.RawMessage(`{"progressToken":1}`)}},
		{`{"name":"echo","arguments":null}`, true, CallParams{Name: "echo"}},
		{`{"name":""}`, false, CallParams{}},
		{`{"name":1}`, false, CallParams{}},
		{`{"name":"echo","task":{}}`, false, CallParams{}},
		{`{"name":"echo","_meta":[]}`, false, CallParams{}},
		{`null`, false, CallParams{}},
		{`{}`, false, CallParams{}},
	} {
		got, ok := ParseCallParams(json.RawMessage(c.params))
		if ok != c.ok || got.Name != c.want.Name || string(got.Args) != string(c.want.Args) || string(got.Meta) != string(c.want.Meta) {
			t.Errorf("ParseCallParams(%s) = %+v %v, want %+v %v", c.params, got, ok, c.want, c.ok)
		}
	}
}

// FuzzParseCallParams holds that plain call params survive being written again: the relay
// sends upstream what it read.
func FuzzParseCallParams(f *testing.F) {
	for _, s := range []string{`{"name":"echo","arguments":{"a":1},"_meta":{"progressToken":1}}`, `{"name":"a\u0000b"}`, `{"name":"x","arguments":[1]}`, `[]`, `{`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, ok := ParseCallParams(data)
		if !ok {
			return
		}
		again, ok := ParseCallParams(AppendCallParams(nil, p.Name, p.Args, p.Meta))
		if !ok || again.Name != p.Name || string(again.Args) != string(p.Args) || string(again.Meta) != string(p.Meta) {
			t.Fatalf("%q: %+v written back reads %+v %v", data, p, again, ok)
		}
	})
}

func TestReadSSE(t *testing.T) {
	stream := "id: 1\nevent: message\ndata: {\"a\":\ndata: 1}\n\n: comment\n\nevent: other\ndata: skip\n\ndata:x\r\n\r\n"
	var got []string
	if err := ReadSSE(strings.NewReader(stream), 1<<10, func(d []byte) error { got = append(got, string(d)); return nil }); err != nil {
		t.Fatal(err)
	}
	if want := []string{"{\"a\":\n1}", "x"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("events = %q, want %q", got, want)
	}
	err := ReadSSE(strings.NewReader("data: "+strings.Repeat("x", 100)+"\n\n"), 50, func([]byte) error { return nil })
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("over the limit: %v, want ErrTooLarge", err)
	}
	// Comments and other events are skipped, CRLF lines read, and ErrStop ends the reading.
	stream = ": hello\n\nevent: prime\nid: 0\ndata:\n\n" +
		"id: 1\ndata: {\"a\":\ndata: 1}\n\n" +
		"event: message\r\ndata: {\"b\":2}\r\n\r\n" +
		"data: {\"c\":3}\n\n"
	got = nil
	err = ReadSSE(strings.NewReader(stream), 1<<10, func(data []byte) error {
		got = append(got, string(data))
		if len(got) == 2 {
			return ErrStop
		}
		return nil
	})
	if err != nil || len(got) != 2 || got[0] != "{\"a\":\n1}" || got[1] != `{"b":2}` {
		t.Fatalf("ReadSSE = %q, %v", got, err)
	}
	n := 0
	if err := ReadSSE(strings.NewReader("data: 1\n\ndata: 2\n\n"), 50, func([]byte) error { n++; return ErrStop }); err != nil || n != 1 {
		t.Errorf("ErrStop: %v after %d events", err, n)
	}
}

// FuzzReadSSE holds that ReadSSE never panics, never hands over more than the limit, and reads
// back every message AppendEvent wrote.
func FuzzReadSSE(f *testing.F) {
	f.Add([]byte("event: message\ndata: {}\n\n"), []byte(`{"a":1}`))
	f.Add([]byte("data: a\r\ndata: b\r\n\r\n"), []byte("{\n}"))
	f.Add([]byte(":\n\n\n"), []byte(""))
	f.Fuzz(func(t *testing.T, stream, msg []byte) {
		const limit = 256
		_ = ReadSSE(bytes.NewReader(stream), limit, func(d []byte) error {
			if len(d) > limit {
				t.Fatalf("%d bytes handed over, limit %d", len(d), limit)
			}
			return nil
		})
		if len(bytes.TrimSpace(msg)) == 0 || len(msg) > limit {
			return
		}
		var got [][]byte
		if err := ReadSSE(bytes.NewReader(AppendEvent(nil, msg)), limit, func(d []byte) error {
			got = append(got, bytes.Clone(d))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 {
			t.Fatalf("AppendEvent(%q) read back as %q", msg, got)
		}
		if json.Valid(msg) {
			var a, b bytes.Buffer
			_ = json.Compact(&a, msg)
			_ = json.Compact(&b, got[0])
			if a.String() != b.String() {
				t.Fatalf("AppendEvent(%q) read back as %q", msg, got[0])
			}
		}
	})
}

func TestAccepts(t *testing.T) {
	for _, c := range []struct {
		values    []string
		json, sse bool
	}{
		{[]string{"application/json, text/event-stream"}, true, true},
		{[]string{"application/json", "text/event-stream;q=0.9"}, true, true},
		{[]string{"*/*"}, true, true},
		{[]string{"application/*"}, true, false},
		{[]string{"TEXT/*"}, false, true},
		{nil, false, false},
	} {
		j, s := Accepts(c.values)
		if j != c.json || s != c.sse {
			t.Errorf("Accepts(%q) = %v %v, want %v %v", c.values, j, s, c.json, c.sse)
		}
	}
}

// FuzzAccepts holds that Accepts never panics and that adding */* always accepts both.
func FuzzAccepts(f *testing.F) {
	f.Add("application/json, text/event-stream")
	f.Add(";;,,q=1")
	f.Fuzz(func(t *testing.T, v string) {
		Accepts([]string{v})
		if j, s := Accepts([]string{v, "*/*"}); !j || !s {
			t.Fatalf("Accepts(%q, */*) = %v %v", v, j, s)
		}
	})
}

func TestVersionRules(t *testing.T) {
	for _, c := range []struct {
		v        string
		stateful bool
		upstream string
	}{
		{"2025-11-25", true, "2025-11-25"},
		{"2025-06-18", true, "2025-06-18"},
		{"2024-11-05", true, "2024-11-05"},
		{StatelessVersion, false, LatestStatefulVersion},
		{"2099-01-01", false, LatestStatefulVersion},
		{"", false, LatestStatefulVersion},
		{"2025-01-01", false, LatestStatefulVersion},
	} {
		if got := Stateful(c.v); got != c.stateful {
			t.Errorf("Stateful(%q) = %v, want %v", c.v, got, c.stateful)
		}
		if got := UpstreamVersion(c.v); got != c.upstream {
			t.Errorf("UpstreamVersion(%q) = %q, want %q", c.v, got, c.upstream)
		}
	}
}
