package httpapi

import (
	"net/url"
	"strconv"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/admin"
)

// ParseAuditFilter reads an audit search from query parameters: agent, type, decision, tool,
// action, session, on_behalf_of, min_risk (low, medium, high or critical), since, until (RFC
// 3339, or a duration such as 1h meaning that long ago), after and before (seqs, exclusive), limit
// and newest (true: the last limit events rather than the first). Unknown parameters are errors.
func ParseAuditFilter(q url.Values, now time.Time) (warden.AuditFilter, error) {
	var f warden.AuditFilter
	for k, v := range q {
		if len(v) != 1 {
			return f, warden.Errorf(warden.EInvalid, "parameter %q must appear once", k)
		}
		val := v[0]
		var err error
		switch k {
		case "agent":
			f.Agent = val
		case "type":
			f.Type = val
		case "decision":
			f.Effect = val
		case "tool":
			f.Tool = val
		case "action":
			f.Action = val
		case "session":
			f.SessionID = val
		case "on_behalf_of":
			f.OnBehalfOf = val
		case "min_risk":
			if val == "" {
				err = warden.Errorf(warden.EInvalid, "min_risk must be low, medium, high or critical")
				break
			}
			f.MinRisk, err = warden.ParseRisk(val)
		case "newest":
			f.Newest, err = strconv.ParseBool(val)
			if err != nil {
				err = warden.Errorf(warden.EInvalid, "newest must be true or false")
			}
		case "since":
			f.Since, err = ParseTime(val, now)
		case "until":
			f.Until, err = ParseTime(val, now)
		case "before":
			f.BeforeSeq, err = strconv.ParseInt(val, 10, 64)
			if err != nil || f.BeforeSeq < 1 {
				err = warden.Errorf(warden.EInvalid, "before must be a positive event seq")
			}
		case "after":
			f.AfterSeq, err = strconv.ParseInt(val, 10, 64)
			if err != nil || f.AfterSeq < 0 {
				err = warden.Errorf(warden.EInvalid, "after must be a non-negative event seq")
			}
		case "limit":
			f.Limit, err = strconv.Atoi(val)
			if err != nil || f.Limit < 1 || f.Limit > 1000 {
				err = warden.Errorf(warden.EInvalid, "limit must be between 1 and 1000")
			}
		default:
			err = warden.Errorf(warden.EInvalid, "unknown parameter %q", k)
		}
		if err != nil {
			return f, err
		}
	}
	return f, nil
}

// ParseTime reads an RFC 3339 time or a duration before now ("1h", "30m", "7d").
func ParseTime(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	d, err := admin.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, warden.Errorf(warden.EInvalid, "invalid time %q: use RFC 3339 (2026-01-02T15:04:05Z) or a duration such as 1h or 7d", s)
	}
	return now.Add(-d), nil
}
