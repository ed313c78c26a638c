package auditsink

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/config"
)

// maxDatagram is the largest syslog message sent over UDP. A larger event goes without its
// arguments, which its args_sha256 still identifies; over TCP every event goes whole.
const maxDatagram = 60000

// Syslog sends events as RFC 5424 messages: over TCP framed by octet counting (RFC 6587), or
// over UDP one message a datagram (RFC 5426). UDP has no acknowledgement, so over UDP delivery
// is at most once per attempt; use TCP where every event must arrive.
type Syslog struct {
	network, address string
	facility         int
	hostname         string
	enc              Encoder

	mu   sync.Mutex
	conn net.Conn
}

// NewSyslog returns a syslog sink; it connects on first delivery and again after a failure.
func NewSyslog(network, address, facility, hostname string, enc Encoder) (*Syslog, error) {
	code, ok := config.SyslogFacilities[facility]
	if !ok {
		return nil, fmt.Errorf("syslog sink: unknown facility %q", facility)
	}
	if hostname == "" {
		hostname = "-"
	}
	return &Syslog{network: network, address: address, facility: code, hostname: printable(hostname, 255), enc: enc}, nil
}

// Deliver writes one message per event.
func (s *Syslog) Deliver(ctx context.Context, evs []*warden.AuditEvent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		var d net.Dialer
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		conn, err := d.DialContext(dctx, s.network, s.address)
		cancel()
		if err != nil {
			return fmt.Errorf("syslog sink: %w", err)
		}
		s.conn = conn
	}
	_ = s.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	var buf bytes.Buffer
	for _, ev := range evs {
		msg, err := s.Message(ev)
		if err != nil {
			return err
		}
		if s.network == "udp" {
			if _, err := s.conn.Write(msg); err != nil {
				return s.fail(err)
			}
			continue
		}
		buf.WriteString(strconv.Itoa(len(msg)))
		buf.WriteByte(' ')
		buf.Write(msg)
	}
	if buf.Len() > 0 {
		if _, err := s.conn.Write(buf.Bytes()); err != nil {
			return s.fail(err)
		}
	}
	return nil
}

func (s *Syslog) fail(err error) error {
	s.conn.Close()
	s.conn = nil
	return fmt.Errorf("syslog sink: %w", err)
}

// Message is the RFC 5424 message of ev:
// <PRI>1 TIMESTAMP HOSTNAME warden - MSGID - BOM MSG, where MSGID is the event type and MSG the
// encoded event.
func (s *Syslog) Message(ev *warden.AuditEvent) ([]byte, error) {
	body, err := s.enc(ev)
	if err != nil {
		return nil, fmt.Errorf("syslog sink: encode event %d: %w", ev.Seq, err)
	}
	if s.network == "udp" && len(body) > maxDatagram {
		short := *ev
		short.Target.Arguments = json.RawMessage(`"[too large for a datagram]"`)
		if body, err = s.enc(&short); err != nil {
			return nil, err
		}
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "<%d>1 %s %s warden - %s - \xef\xbb\xbf", s.facility*8+severity(ev),
		ev.Time.UTC().Format("2006-01-02T15:04:05.000000Z07:00"), s.hostname, printable(ev.Type, 32))
	b.Write(body)
	return b.Bytes(), nil
}

// severity is the RFC 5424 severity of an event: a refusal is a warning, a failure an error, a
// high-risk action a notice, the rest informational.
func severity(ev *warden.AuditEvent) int {
	switch {
	case ev.Decision.Effect == warden.EffectError || ev.Outcome.Status == warden.StatusError:
		return 3
	case ev.Decision.Effect == warden.EffectDeny || ev.Decision.Effect == warden.EffectRejected || ev.Decision.Effect == warden.EffectExpired:
		return 4
	case ev.Target.Risk.Level() >= warden.RiskHigh.Level():
		return 5
	}
	return 6
}

// printable keeps a header field to the printable ASCII RFC 5424 allows, "-" if empty.
func printable(s string, n int) string {
	b := make([]byte, 0, min(len(s), n))
	for i := 0; i < len(s) && len(b) < n; i++ {
		if s[i] >= 33 && s[i] <= 126 {
			b = append(b, s[i])
		}
	}
	if len(b) == 0 {
		return "-"
	}
	return string(b)
}

// Close closes the connection.
func (s *Syslog) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return nil
	}
	err := s.conn.Close()
	s.conn = nil
	return err
}
