package apitype

import (
	"encoding/json"
	"testing"

	"github.com/wardenhq/warden"
)

// FuzzAlertOf reads a finding from any event arguments a store could hand back: no panic, and
// an event that is not a detect.* event is never an alert.
func FuzzAlertOf(f *testing.F) {
	f.Add("detect.rate_spike", []byte(`{"agent":"bot","detector":"rate_spike","step":"suspend","source_seq":3}`))
	f.Add("detect.first_seen_action", []byte(`{"agent":1}`))
	f.Add("tool.call", []byte(`{"agent":"bot"}`))
	f.Add("detect.", []byte(`null`))
	f.Fuzz(func(t *testing.T, typ string, args []byte) {
		ev := &warden.AuditEvent{Type: typ, Target: warden.EventTarget{Arguments: json.RawMessage(args)}}
		a, ok := AlertOf(ev)
		if ok && (len(typ) < len(warden.EventDetectPrefix) || typ[:len(warden.EventDetectPrefix)] != warden.EventDetectPrefix || a.Kind != typ[len(warden.EventDetectPrefix):]) {
			t.Fatalf("%q read as alert %+v", typ, a)
		}
	})
}
