package egress

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"strings"
)

// maxHello bounds the ClientHello the proxy reads before it has checked the server name.
const maxHello = 64 << 10

var errNotTLS = errors.New("the connection does not start with a TLS ClientHello")

// readClientHello reads the TLS records that carry the first handshake message from r, without
// consuming more than those records, and returns the raw bytes (to replay upstream) and the
// server name the ClientHello asks for ("" when it names none).
func readClientHello(r *bufio.Reader) (raw []byte, serverName string, err error) {
	var hs []byte // the handshake message, reassembled from the records' fragments
	for {
		hdr, err := r.Peek(5)
		if err != nil {
			return raw, "", errNotTLS
		}
		if hdr[0] != 0x16 || hdr[1] != 3 {
			return raw, "", errNotTLS
		}
		n := int(binary.BigEndian.Uint16(hdr[3:5]))
		if n == 0 || len(raw)+5+n > maxHello {
			return raw, "", errNotTLS
		}
		rec := make([]byte, 5+n)
		if _, err := io.ReadFull(r, rec); err != nil {
			return raw, "", errNotTLS
		}
		raw = append(raw, rec...)
		hs = append(hs, rec[5:]...)
		if len(hs) >= 4 {
			if hs[0] != 1 { // client_hello
				return raw, "", errNotTLS
			}
			want := 4 + int(hs[1])<<16 | int(hs[2])<<8 | int(hs[3])
			if want > maxHello {
				return raw, "", errNotTLS
			}
			if len(hs) >= want {
				name, err := parseClientHello(hs[4:want])
				return raw, name, err
			}
		}
	}
}

// parseClientHello returns the host_name of the server_name extension of a ClientHello body.
func parseClientHello(b []byte) (string, error) {
	s := cursor(b)
	if !s.skip(2+32) || !s.skipVec(1) || !s.skipVec(2) || !s.skipVec(1) { // version, random, session id, suites, compression
		return "", errNotTLS
	}
	if s.empty() {
		return "", nil // no extensions
	}
	exts, ok := s.vec(2)
	if !ok || !s.empty() {
		return "", errNotTLS
	}
	name, found := "", false
	for !exts.empty() {
		typ, ok1 := exts.u16()
		body, ok2 := exts.vec(2)
		if !ok1 || !ok2 {
			return "", errNotTLS
		}
		if typ != 0 { // server_name
			continue
		}
		if found {
			return "", errors.New("the ClientHello names a server twice")
		}
		found = true
		list, ok := body.vec(2)
		if !ok || !body.empty() {
			return "", errNotTLS
		}
		for !list.empty() {
			kind, ok1 := list.u8()
			host, ok2 := list.vec(2)
			if !ok1 || !ok2 {
				return "", errNotTLS
			}
			if kind == 0 {
				if name != "" {
					return "", errors.New("the ClientHello names several hosts")
				}
				name = string(host)
			}
		}
	}
	return strings.TrimSuffix(strings.ToLower(name), "."), nil
}

type cursor []byte

func (c *cursor) empty() bool { return len(*c) == 0 }

func (c *cursor) skip(n int) bool {
	if len(*c) < n {
		return false
	}
	*c = (*c)[n:]
	return true
}

func (c *cursor) u8() (int, bool) {
	if len(*c) < 1 {
		return 0, false
	}
	v := int((*c)[0])
	*c = (*c)[1:]
	return v, true
}

func (c *cursor) u16() (int, bool) {
	if len(*c) < 2 {
		return 0, false
	}
	v := int(binary.BigEndian.Uint16(*c))
	*c = (*c)[2:]
	return v, true
}

// vec reads a vector with a length prefix of size bytes.
func (c *cursor) vec(size int) (cursor, bool) {
	var n int
	var ok bool
	if size == 1 {
		n, ok = c.u8()
	} else {
		n, ok = c.u16()
	}
	if !ok || len(*c) < n {
		return nil, false
	}
	v := (*c)[:n]
	*c = (*c)[n:]
	return v, true
}

func (c *cursor) skipVec(size int) bool {
	_, ok := c.vec(size)
	return ok
}
