package mcpgw

import (
	"bytes"
	"encoding/json"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
)

// rpcMessage is one JSON-RPC 2.0 message read by warden itself rather than by the SDK: its
// members as they were on the wire.
type rpcMessage struct {
	id     json.RawMessage // nil when absent; "null" when null
	method string
	params json.RawMessage
	result json.RawMessage
	err    json.RawMessage
}

// isRequest reports whether m is a request (a call that expects an answer).
func (m *rpcMessage) isRequest() bool {
	return m.method != "" && m.id != nil && string(m.id) != "null"
}

// isNotification reports whether m is a notification.
func (m *rpcMessage) isNotification() bool {
	return m.method != "" && (m.id == nil || string(m.id) == "null")
}

// isResponse reports whether m is a response.
func (m *rpcMessage) isResponse() bool { return m.method == "" }

// parseMessage reads data, valid JSON, as a JSON-RPC 2.0 message in its plainest form, which
// the SDK's decoder accepts too: an object with no keys but jsonrpc "2.0", a method string
// without escapes, an id that is absent, null, an integer or a string without escapes, and
// params (a request or notification) or exactly one of result and error (a response, with an
// id; an error is an object). Anything else is not plain (false) and is left to the SDK's own
// decoder, which allocates a 32 KiB buffer on every use and which the SDK runs on each message
// several times itself.
func parseMessage(data []byte) (rpcMessage, bool) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil || m == nil {
		return rpcMessage{}, false
	}
	var msg rpcMessage
	version := false
	for k, v := range m {
		switch k {
		case "jsonrpc":
			if string(v) != `"2.0"` {
				return rpcMessage{}, false
			}
			version = true
		case "method":
			if !plainString(v) || len(v) == 2 {
				return rpcMessage{}, false
			}
			msg.method = string(v[1 : len(v)-1])
		case "id":
			if string(v) != "null" && !plainString(v) && !smallInteger(v) {
				return rpcMessage{}, false
			}
			msg.id = v
		case "params":
			msg.params = v
		case "result":
			msg.result = v
		case "error":
			if len(v) == 0 || v[0] != '{' {
				return rpcMessage{}, false
			}
			msg.err = v
		default:
			return rpcMessage{}, false
		}
	}
	if !version {
		return rpcMessage{}, false
	}
	if msg.method != "" {
		return msg, msg.result == nil && msg.err == nil
	}
	// A response: an id and exactly one of result and error, and no params.
	return msg, msg.id != nil && string(msg.id) != "null" && msg.params == nil && (msg.result == nil) != (msg.err == nil)
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

// readMessage reads a message from an upstream: the plain form directly, anything else through
// the SDK's decoder.
func readMessage(data []byte) (rpcMessage, bool) {
	if m, ok := parseMessage(data); ok {
		return m, true
	}
	msg, err := jsonrpc.DecodeMessage(data)
	if err != nil {
		return rpcMessage{}, false
	}
	switch msg := msg.(type) {
	case *jsonrpc.Request:
		m := rpcMessage{method: msg.Method, params: msg.Params}
		if msg.ID.IsValid() {
			m.id, _ = json.Marshal(msg.ID.Raw())
		}
		return m, true
	case *jsonrpc.Response:
		m := rpcMessage{result: msg.Result}
		m.id, _ = json.Marshal(msg.ID.Raw())
		if msg.Error != nil {
			m.err, _ = json.Marshal(msg.Error)
			m.result = nil
		} else if m.result == nil {
			m.result = json.RawMessage("null")
		}
		return m, true
	}
	return rpcMessage{}, false
}

// sameID reports whether two raw JSON-RPC ids are the same id.
func sameID(a, b json.RawMessage) bool { return bytes.Equal(a, b) }

// appendMessage appends a JSON-RPC 2.0 message with the given raw members (nil: absent).
func appendMessage(b []byte, id json.RawMessage, method string, params, result, rpcErr []byte) []byte {
	b = append(b, `{"jsonrpc":"2.0"`...)
	if id != nil {
		b = append(b, `,"id":`...)
		b = append(b, id...)
	}
	if method != "" {
		b = append(b, `,"method":`...)
		b, _ = appendJSONString(b, method)
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

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) ([]byte, error) {
	data, err := json.Marshal(s)
	return append(b, data...), err
}
