package apiclient

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
)

// MaxEvent bounds one line of an event stream: an audit event with large arguments fits.
const MaxEvent = 16 << 20

// Event is one Server-Sent Event, or, with Comment set, a comment line the server sends to keep
// the connection alive.
type Event struct {
	ID      string
	Name    string // "message" when the server named none
	Data    string
	Comment bool
}

// ErrStop, returned by an event handler, ends a stream without an error.
var ErrStop = errors.New("stop reading the stream")

// Stream opens path as a Server-Sent Events stream (resuming after lastEventID when it is not
// empty), calls opened once the server accepted it, and calls fn for each event until the server
// closes the stream (nil), ctx ends (its error), or fn returns an error (that error, or nil for
// ErrStop). A refusal to open it is the *warden.Error of the answer, as Do returns.
func (c *Client) Stream(ctx context.Context, path, lastEventID string, opened func(), fn func(Event) error) error {
	h := http.Header{"Accept": {"text/event-stream"}}
	if lastEventID != "" {
		h.Set("Last-Event-ID", lastEventID)
	}
	resp, err := c.Send(ctx, http.MethodGet, path, nil, h)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if opened != nil {
		opened()
	}
	err = ReadEvents(resp.Body, fn)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(err, ErrStop) {
		return nil
	}
	return err
}

// ReadEvents reads a Server-Sent Events body (https://html.spec.whatwg.org/multipage/server-sent-events.html)
// and calls fn for each event and each comment, until the body ends (nil) or fn returns an
// error (that error). A line over MaxEvent is an error: the stream is not what warden sends.
func ReadEvents(r io.Reader, fn func(Event) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), MaxEvent)
	var ev Event
	var data []string
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if ev.Name != "" || len(data) > 0 {
				if ev.Name == "" {
					ev.Name = "message"
				}
				ev.Data = strings.Join(data, "\n")
				if err := fn(ev); err != nil {
					return err
				}
			}
			// The last event ID stays for the events that follow, as the specification says.
			ev, data = Event{ID: ev.ID}, nil
			continue
		}
		if strings.HasPrefix(line, ":") {
			if err := fn(Event{Comment: true, Data: strings.TrimPrefix(line[1:], " ")}); err != nil {
				return err
			}
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			ev.ID = value
		case "event":
			ev.Name = value
		case "data":
			data = append(data, value)
		}
	}
	return sc.Err()
}
