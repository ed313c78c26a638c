package mcpgw

import (
	"io"
	"strings"
	"testing"

	"github.com/wardenhq/warden"
)

// The SSE filter takes out the notifications it relays and passes everything else to the SDK
// byte for byte.
func TestSSEFilter(t *testing.T) {
	progress := `{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"warden-9","progress":1}}`
	for _, tc := range []struct{ name, in, want string }{
		{"response", "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n", ""},
		{"crlf, comment, retry, multi-line data", ": ok\r\nretry: 100\r\ndata: {\"jsonrpc\":\"2.0\",\r\ndata: \"id\":1,\"result\":{}}\r\n\r\n", ""},
		{"server request", "data: {\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"sampling/createMessage\",\"params\":{}}\n\n", ""},
		{"notification relayed, its id kept", "id: s_3\ndata: " + progress + "\n\n", "id: s_3\n\n"},
		{"notification relayed without id", "data: " + progress + "\n\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n", "data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n"},
		{"unknown notification passes", "data: {\"jsonrpc\":\"2.0\",\"method\":\"x/y\"}\n\n", ""},
		{"not JSON-RPC passes", "data: hello\n\n", ""},
		{"unterminated tail passes", "data: {\"jsonrpc\"", ""},
		{"long line", "data: " + strings.Repeat("x", 100<<10) + "\n\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.want
			if want == "" {
				want = tc.in
			}
			up := newUpstream(nil, &warden.Tool{Name: "t"})
			f := newSSEFilter(io.NopCloser(strings.NewReader(tc.in)), up, nil)
			got, err := io.ReadAll(f)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != want {
				t.Errorf("got %q, want %q", got, want)
			}
		})
	}
}
