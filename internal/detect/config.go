package detect

import (
	"slices"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/config"
)

// Config is the detectors' thresholds and the containment ladder (config.Detect, validated).
type Config struct {
	LearningPeriod time.Duration
	LearningCalls  int
	ZScore         float64
	RateFloor      int
	DenialFloor    int
	ApprovalFloor  int
	BytesFloor     int64
	BudgetFloor    float64
	OffHoursShare  float64
	ApproveFor     time.Duration
	Ladder         []config.DetectRule
}

// FromConfig takes the server configuration's detect section, validated.
func FromConfig(c config.Detect) Config {
	return Config{
		LearningPeriod: time.Duration(c.LearningPeriod), LearningCalls: c.LearningCalls, ZScore: c.ZScore,
		RateFloor: c.RateFloor, DenialFloor: c.DenialFloor, ApprovalFloor: c.ApprovalFloor, BytesFloor: c.BytesFloor, BudgetFloor: c.BudgetFloor,
		OffHoursShare: c.OffHoursShare, ApproveFor: time.Duration(c.ApproveFor), Ladder: c.Ladder,
	}
}

// withDefaults fills in the zero fields with config's defaults (config.Detect.Validate is the
// one place they are written down).
func (c Config) withDefaults() Config {
	d := config.Detect{
		LearningPeriod: config.Duration(c.LearningPeriod), LearningCalls: c.LearningCalls, ZScore: c.ZScore,
		RateFloor: c.RateFloor, DenialFloor: c.DenialFloor, ApprovalFloor: c.ApprovalFloor, BytesFloor: c.BytesFloor, BudgetFloor: c.BudgetFloor,
		OffHoursShare: c.OffHoursShare, ApproveFor: config.Duration(c.ApproveFor), Ladder: c.Ladder,
	}
	if err := d.Validate(); err != nil {
		// A Config that config.Detect would refuse never reaches here from the server; a
		// caller that builds one by hand gets the defaults rather than nonsense.
		return FromConfig(config.Detect{Ladder: []config.DetectRule{}})
	}
	return FromConfig(d)
}

// Step is the containment a finding gets: the most severe step of the ladder's rules that match
// its detector and risk; alert when none does.
func (c Config) Step(f Finding) string {
	step := 0
	for _, r := range c.Ladder {
		if r.Detector != "*" && r.Detector != f.Kind {
			continue
		}
		min := warden.Risk(r.MinRisk)
		if r.MinRisk == "" {
			min = warden.RiskLow
		}
		if f.Risk.Level() < min.Level() {
			continue
		}
		step = max(step, slices.Index(config.DetectSteps, r.Step))
	}
	return config.DetectSteps[step]
}
