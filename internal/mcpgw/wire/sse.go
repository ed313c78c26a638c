package wire

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
)

// ErrTooLarge is returned for a message over the size limit.
var ErrTooLarge = errors.New("an upstream message is over the size limit")

// ReadSSE passes the data of each message event of an SSE stream to each, until it returns an
// error (ErrStop: done) or the stream ends. A message over limit bytes ends it with ErrTooLarge.
// each may not keep data.
func ReadSSE(body io.Reader, limit int, each func(data []byte) error) error {
	br := bufio.NewReaderSize(body, 8<<10)
	var data, line []byte
	var more bool
	name := ""
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if err == bufio.ErrBufferFull {
			if len(line)+len(data) > limit {
				return ErrTooLarge
			}
			continue
		}
		if err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		field := bytes.TrimRight(line, "\r\n")
		if len(field) == 0 {
			if (name == "" || name == "message") && len(data) > 0 {
				if err := each(data); err != nil {
					if err == ErrStop {
						return nil
					}
					return err
				}
			}
			data, more, name = data[:0], false, ""
			line = line[:0]
			continue
		}
		key, value, _ := bytes.Cut(field, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(key) {
		case "data":
			if more {
				data = append(data, '\n')
			}
			data, more = append(data, value...), true
			if len(data) > limit {
				return ErrTooLarge
			}
		case "event":
			name = string(value)
		}
		line = line[:0]
	}
}

// AppendEvent appends msg, one JSON-RPC message, as an SSE message event. A message with line
// breaks (JSON whitespace) is compacted first, so that it is one data line.
func AppendEvent(b, msg []byte) []byte {
	if bytes.ContainsAny(msg, "\r\n") {
		var c bytes.Buffer
		if err := json.Compact(&c, msg); err == nil {
			msg = c.Bytes()
		} else {
			// Not JSON: no line of it may end the event early.
			msg = bytes.ReplaceAll(bytes.ReplaceAll(msg, []byte("\r"), nil), []byte("\n"), nil)
		}
	}
	b = append(b, "event: message\ndata: "...)
	b = append(b, msg...)
	return append(b, "\n\n"...)
}
