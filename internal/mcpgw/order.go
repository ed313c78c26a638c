package mcpgw

import (
	"bufio"
	"bytes"
	"context"
	"io"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenhq/warden/internal/mcpgw/wire"
)

// The Go SDK's client hands responses to the caller as they are read but queues notifications
// for a handler goroutine, so a notification an upstream sent before its response may be
// handled after it — too late to reach the agent on that call's stream. Warden therefore relays
// notifications where it reads them, in wire order: in the SSE bodies of a remote upstream and
// in the message stream of a local one. Whatever these readers leave (requests, responses)
// goes to the SDK as it was.

// orderedTransport relays a local server's notifications as its connection reads them.
type orderedTransport struct {
	mcp.Transport
	up *upstream
}

func (t orderedTransport) Connect(ctx context.Context) (mcp.Connection, error) {
	c, err := t.Transport.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &orderedConn{Connection: c, up: t.up}, nil
}

type orderedConn struct {
	mcp.Connection
	up *upstream
}

func (c *orderedConn) Read(ctx context.Context) (jsonrpc.Message, error) {
	for {
		msg, err := c.Connection.Read(ctx)
		if resp, ok := msg.(*jsonrpc.Response); ok && err == nil {
			c.up.answered(resp)
		}
		if err != nil || !c.up.relayRaw(nil, msg) {
			return msg, err
		}
	}
}

// Write notes the id of a call's request, so that Read can measure its answer (flight.bytesIn).
func (c *orderedConn) Write(ctx context.Context, msg jsonrpc.Message) error {
	if req, ok := msg.(*jsonrpc.Request); ok && req.IsCall() {
		if f, ok := ctx.Value(flightKey{}).(*flight); ok {
			c.up.watch(req.ID, f)
		}
	}
	return c.Connection.Write(ctx, msg)
}

// maxFilteredEvent bounds the SSE event sseFilter holds to look at; a bigger one, and the rest
// of its stream, pass through to the SDK untouched.
const maxFilteredEvent = 8 << 20

// sseFilter is the body of an SSE response from a remote upstream, as the SDK reads it: it
// relays the notifications among the events (related to f, the call whose POST this stream
// answers, if any) and passes on everything else byte for byte.
type sseFilter struct {
	src   *bufio.Reader
	body  io.ReadCloser
	up    *upstream
	f     *flight
	out   []byte // ready for the SDK
	event []byte // the raw event being read
	line  []byte // the raw line being read
	data  []byte
	more  bool // data has a line already
	id    string
	name  string
	err   error
	pass  bool // stopped filtering
}

func newSSEFilter(body io.ReadCloser, up *upstream, f *flight) *sseFilter {
	return &sseFilter{src: bufio.NewReaderSize(body, 8<<10), body: body, up: up, f: f}
}

func (s *sseFilter) Close() error { return s.body.Close() }

func (s *sseFilter) Read(p []byte) (int, error) {
	for len(s.out) == 0 && s.err == nil {
		s.step()
	}
	if len(s.out) > 0 {
		n := copy(p, s.out)
		s.out = s.out[n:]
		return n, nil
	}
	return 0, s.err
}

// step reads one line (or, having stopped filtering, whatever is there).
func (s *sseFilter) step() {
	if s.pass {
		buf := make([]byte, 32<<10)
		n, err := s.src.Read(buf)
		s.out, s.err = buf[:n], err
		return
	}
	chunk, err := s.src.ReadSlice('\n')
	s.line = append(s.line, chunk...)
	switch {
	case err == bufio.ErrBufferFull:
		if len(s.event)+len(s.line) > maxFilteredEvent {
			s.giveUp()
		}
		return
	case err != nil:
		s.out = append(append(s.out, s.event...), s.line...)
		s.event, s.line, s.err = nil, nil, err
		return
	}
	line := s.line
	s.event = append(s.event, line...)
	s.line = nil
	field := bytes.TrimRight(line, "\r\n")
	if len(field) == 0 {
		s.endEvent()
		return
	}
	name, value, _ := bytes.Cut(field, []byte(":"))
	value = bytes.TrimPrefix(value, []byte(" "))
	switch string(name) {
	case "data":
		if s.more {
			s.data = append(s.data, '\n')
		}
		s.data, s.more = append(s.data, value...), true
	case "id":
		s.id = string(value)
	case "event":
		s.name = string(value)
	}
	if len(s.event) > maxFilteredEvent {
		s.giveUp()
	}
}

func (s *sseFilter) giveUp() {
	s.out = append(append(s.out, s.event...), s.line...)
	s.event, s.line, s.data, s.more, s.pass = nil, nil, nil, false, true
}

func (s *sseFilter) endEvent() {
	raw, data, id, name := s.event, s.data, s.id, s.name
	s.event, s.data, s.more, s.id, s.name = nil, nil, false, "", ""
	if (name == "" || name == "message") && len(data) > 0 && s.f != nil && !wire.MayBeNotification(data) {
		// On the stream of a call's POST, the response is the call's answer: measure it.
		if m, ok := wire.Read(data); ok && m.IsResponse() {
			s.f.bytesIn.Store(int64(len(m.Result) + len(m.Error)))
		}
	}
	if (name == "" || name == "message") && len(data) > 0 && wire.MayBeNotification(data) {
		if msg, err := jsonrpc.DecodeMessage(data); err == nil && s.up.relayRaw(s.f, msg) {
			if id != "" {
				// Keep the event's id, so that a resumed stream starts after it.
				s.out = append(s.out, "id: "+id+"\n\n"...)
			}
			return
		}
	}
	s.out = append(s.out, raw...)
}
