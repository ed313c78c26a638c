package apitype

import (
	"strconv"
	"strings"
	"time"

	"github.com/wardenhq/warden"
)

// ParseDuration parses a duration as the API's fields and flags take it (a ttl, a retention, an
// audit search's since): a Go duration ("12h", "30m") or a whole number of days ("90d").
func ParseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err == nil && n >= 0 && n <= 100*365 {
			return time.Duration(n) * 24 * time.Hour, nil
		}
	} else if d, err := time.ParseDuration(s); err == nil {
		return d, nil
	}
	return 0, warden.Errorf(warden.EInvalid, "invalid duration %q: use e.g. 90d, 12h or 30m", s)
}
