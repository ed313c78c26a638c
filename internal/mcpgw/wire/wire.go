// Package wire is the MCP gateway's own reading and writing of the Model Context Protocol on the
// wire: JSON-RPC 2.0 messages, the params of a tools/call, the negotiated protocol version, and
// server-sent events. It does no I/O beyond an io.Reader it is handed; every parser has a fuzz
// target.
package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"mime"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
)

// A Message is one JSON-RPC 2.0 message read by warden itself rather than by the SDK: its members
// as they were on the wire.
type Message struct {
	ID     json.RawMessage // nil when absent; "null" when null
	Method string
	Params json.RawMessage
	Result json.RawMessage
	Error  json.RawMessage
}

// IsRequest reports whether m is a request (a call that expects an answer).
func (m *Message) IsRequest() bool {
	return m.Method != "" && m.ID != nil && string(m.ID) != "null"
}

// IsNotification reports whether m is a notification.
func (m *Message) IsNotification() bool {
	return m.Method != "" && (m.ID == nil || string(m.ID) == "null")
}

// IsResponse reports whether m is a response.
func (m *Message) IsResponse() bool { return m.Method == "" }

// Parse reads data, valid JSON, as a JSON-RPC 2.0 message in its plainest form, which the SDK's
// decoder accepts too: an object with no keys but jsonrpc "2.0", a method string without
// escapes, an id that is absent, null, an integer or a string without escapes, and params (a
// request or notification) or exactly one of result and error (a response, with an id; an error
// is an object). Anything else is not plain (false) and is left to the SDK's own decoder, which
// allocates a 32 KiB buffer on every use and which the SDK runs on each message several times
// itself.
func Parse(data []byte) (Message, bool) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil || m == nil {
		return Message{}, false
	}
	var msg Message
	version := false
	for k, v := range m {
		switch k {
		case "jsonrpc":
			if string(v) != `"2.0"` {
				return Message{}, false
			}
			version = true
		case "method":
			if !plainString(v) || len(v) == 2 {
				return Message{}, false
			}
			msg.Method = string(v[1 : len(v)-1])
		case "id":
			if string(v) != "null" && !plainString(v) && !smallInteger(v) {
				return Message{}, false
			}
			msg.ID = v
		case "params":
			msg.Params = v
		case "result":
			msg.Result = v
		case "error":
			if len(v) == 0 || v[0] != '{' {
				return Message{}, false
			}
			msg.Error = v
		default:
			return Message{}, false
		}
	}
	if !version {
		return Message{}, false
	}
	if msg.Method != "" {
		return msg, msg.Result == nil && msg.Error == nil
	}
	// A response: an id and exactly one of result and error, and no params.
	return msg, msg.ID != nil && string(msg.ID) != "null" && msg.Params == nil && (msg.Result == nil) != (msg.Error == nil)
}

// plainString reports whether v is a JSON string of printable ASCII without escapes.
func plainString(v []byte) bool {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return false
	}
	for _, c := range v[1 : len(v)-1] {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// smallInteger reports whether v is a JSON integer that a float64 holds exactly.
func smallInteger(v []byte) bool {
	if len(v) > 0 && v[0] == '-' {
		v = v[1:]
	}
	if len(v) == 0 || len(v) > 15 {
		return false
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Read reads a message from an upstream: the plain form directly, anything else through the
// SDK's decoder.
func Read(data []byte) (Message, bool) {
	if m, ok := Parse(data); ok {
		return m, true
	}
	msg, err := jsonrpc.DecodeMessage(data)
	if err != nil {
		return Message{}, false
	}
	switch msg := msg.(type) {
	case *jsonrpc.Request:
		if msg.Method == "" {
			// The SDK's decoder takes a request without a method; read as a Message it would
			// be a response (FuzzRead found it).
			return Message{}, false
		}
		m := Message{Method: msg.Method, Params: msg.Params}
		if msg.ID.IsValid() {
			m.ID, _ = json.Marshal(msg.ID.Raw())
		}
		return m, true
	case *jsonrpc.Response:
		m := Message{Result: msg.Result}
		m.ID, _ = json.Marshal(msg.ID.Raw())
		if msg.Error != nil {
			m.Error, _ = json.Marshal(msg.Error)
			m.Result = nil
		} else if m.Result == nil {
			m.Result = json.RawMessage("null")
		}
		return m, true
	}
	return Message{}, false
}

// Check answers whether a POST body is something to pass on: JSON (else CodeParseError) made of
// JSON-RPC 2.0 messages (else CodeInvalidRequest), with a message fit to show the agent. A
// single plain message (see Parse) comes back read, for the lean relay.
func Check(body []byte) (msg Message, plain bool, code int64, errMsg string) {
	if !json.Valid(body) {
		return msg, false, jsonrpc.CodeParseError, "parse error: the body is not JSON"
	}
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) > 0 && trimmed[0] == '[' {
		var batch []json.RawMessage
		if err := json.Unmarshal(trimmed, &batch); err != nil || len(batch) == 0 {
			return msg, false, jsonrpc.CodeInvalidRequest, "invalid request: an empty or malformed batch"
		}
		for _, m := range batch {
			if _, err := jsonrpc.DecodeMessage(m); err != nil {
				return msg, false, jsonrpc.CodeInvalidRequest, "invalid request: not a JSON-RPC 2.0 message"
			}
		}
		return msg, false, 0, ""
	}
	if msg, ok := Parse(trimmed); ok {
		return msg, true, 0, ""
	}
	if _, err := jsonrpc.DecodeMessage(trimmed); err != nil {
		return msg, false, jsonrpc.CodeInvalidRequest, "invalid request: not a JSON-RPC 2.0 message"
	}
	return msg, false, 0, ""
}

// MayBeNotification is false for a message that is surely not a notification: a JSON object
// without a "method" key (a response) or with a non-null "id" (a request). Most events of an
// upstream's stream are responses, and the SDK's decoder allocates a 32 KiB buffer on every use:
// they can pass without it. Anything this cannot read may be a notification.
func MayBeNotification(data []byte) bool {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil || m == nil {
		return true
	}
	if _, ok := m["method"]; !ok {
		return false
	}
	id, ok := m["id"]
	return !ok || string(id) == "null"
}

// SameID reports whether two raw JSON-RPC ids are the same id.
func SameID(a, b json.RawMessage) bool { return bytes.Equal(a, b) }

// Append appends a JSON-RPC 2.0 message with the given raw members (nil: absent).
func Append(b []byte, id json.RawMessage, method string, params, result, rpcErr []byte) []byte {
	b = append(b, `{"jsonrpc":"2.0"`...)
	if id != nil {
		b = append(b, `,"id":`...)
		b = append(b, id...)
	}
	if method != "" {
		b = append(b, `,"method":`...)
		b = AppendString(b, method)
	}
	if params != nil {
		b = append(b, `,"params":`...)
		b = append(b, params...)
	}
	if result != nil {
		b = append(b, `,"result":`...)
		b = append(b, result...)
	}
	if rpcErr != nil {
		b = append(b, `,"error":`...)
		b = append(b, rpcErr...)
	}
	return append(b, '}')
}

// AppendString appends s as a JSON string.
func AppendString(b []byte, s string) []byte {
	data, _ := json.Marshal(s) // a string always marshals
	return append(b, data...)
}

// ErrorObject is the JSON-RPC error object {code, message}.
func ErrorObject(code int64, msg string) json.RawMessage {
	data, _ := json.Marshal(&jsonrpc.Error{Code: code, Message: msg})
	return data
}

// CallParams are the params of a plain tools/call: name, arguments and _meta, nothing else (a
// task-augmented call, say, is not plain).
type CallParams struct {
	Name string
	Args json.RawMessage // nil when absent or null
	Meta json.RawMessage // nil when absent; else an object
}

// ParseCallParams reads the params of a plain tools/call; false means they are something else.
func ParseCallParams(data json.RawMessage) (CallParams, bool) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil || m == nil {
		return CallParams{}, false
	}
	var p CallParams
	for k, v := range m {
		switch k {
		case "name":
			if err := json.Unmarshal(v, &p.Name); err != nil || p.Name == "" {
				return CallParams{}, false
			}
		case "arguments":
			if string(v) != "null" {
				p.Args = v
			}
		case "_meta":
			if len(v) == 0 || v[0] != '{' {
				return CallParams{}, false
			}
			p.Meta = v
		default:
			return CallParams{}, false
		}
	}
	return p, p.Name != ""
}

// AppendCallParams appends the params of a tools/call of name with the raw arguments and _meta
// (nil: absent).
func AppendCallParams(b []byte, name string, args, meta json.RawMessage) []byte {
	b = append(b, `{"name":`...)
	b = AppendString(b, name)
	if args != nil {
		b = append(append(b, `,"arguments":`...), args...)
	}
	if meta != nil {
		b = append(append(b, `,"_meta":`...), meta...)
	}
	return append(b, '}')
}

// Accepts reads Accept headers as the SDK does: whether JSON and SSE are both acceptable.
func Accepts(values []string) (jsonOK, streamOK bool) {
	for _, value := range values {
		for raw := range strings.SplitSeq(value, ",") {
			base, _, _ := strings.Cut(strings.TrimSpace(raw), ";")
			switch strings.ToLower(strings.TrimSpace(base)) {
			case "application/json", "application/*":
				jsonOK = true
			case "text/event-stream", "text/*":
				streamOK = true
			case "*/*":
				jsonOK, streamOK = true, true
			}
		}
	}
	return jsonOK, streamOK
}

// MediaType is the media type of a Content-Type value, "" when it cannot be read.
func MediaType(v string) string {
	t, _, err := mime.ParseMediaType(v)
	if err != nil {
		return ""
	}
	return t
}

// ErrStop, returned by the callback of ReadSSE, ends the reading without an error.
var ErrStop = errors.New("stop")
