package sqlstore

import (
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/wardenhq/warden"
)

// The times a BIGINT of Unix nanoseconds can hold: the years 1678 to 2262.
var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

// unixNanos stores a time as Unix nanoseconds, and the zero time as NULL so that it never
// collides with the Unix epoch.
type unixNanos time.Time

func (t unixNanos) Value() (driver.Value, error) {
	tt := time.Time(t)
	if tt.IsZero() {
		return nil, nil
	}
	if tt.Before(minTime) || tt.After(maxTime) {
		return nil, warden.Errorf(warden.EInvalid, "time %s is outside the years 1678 to 2262 that the store keeps",
			tt.UTC().Format(time.RFC3339))
	}
	return tt.UnixNano(), nil
}

// boundNanos is a time that stored ones are compared with. A time beyond the range of a column
// clamps to its end, which keeps the comparison true to the times themselves: every stored time
// is after the zero time.
func boundNanos(t time.Time) int64 {
	switch {
	case t.Before(minTime):
		return math.MinInt64
	case t.After(maxTime):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// timeColumn scans what unixNanos stored, in UTC.
type timeColumn struct{ t *time.Time }

func (c timeColumn) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*c.t = time.Time{}
	case int64:
		*c.t = time.Unix(0, v).UTC()
	default:
		return fmt.Errorf("time column holds %T, not an integer", src)
	}
	return nil
}

// jsonColumn scans JSON text into v.
type jsonColumn struct{ v any }

func (c jsonColumn) Scan(src any) error {
	switch v := src.(type) {
	case string:
		return json.Unmarshal([]byte(v), c.v)
	case []byte:
		return json.Unmarshal(v, c.v)
	default:
		return fmt.Errorf("JSON column holds %T, not text", src)
	}
}

// jsonText encodes v as the text of a JSON column. HTML is left unescaped so that raw JSON such
// as audit arguments reads back with the characters it was given, if compacted.
func jsonText(v any) (string, error) {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}
