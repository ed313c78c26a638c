package config

import (
	"fmt"
	"slices"
	"time"
)

// Detect configures detection (docs/detect.md): per-agent baselines learned from the audit log,
// findings when an agent drifts from them, and the containment ladder. Zero values take the
// defaults.
type Detect struct {
	// Disabled turns detection off. Default: on.
	Disabled bool `yaml:"disabled"`
	// LearningPeriod and LearningCalls: no finding until an agent has been watched for the
	// period or has made the calls, whichever comes first. Defaults 168h and 500.
	LearningPeriod Duration `yaml:"learning_period"`
	LearningCalls  int      `yaml:"learning_calls"`
	// ZScore: a rate or denial share this many standard deviations over its average is a
	// spike. Default 4.
	ZScore float64 `yaml:"z_score"`
	// RateFloor: no rate spike under this many calls in a minute. Default 20.
	RateFloor int `yaml:"rate_floor"`
	// DenialFloor: no denial spike under this many denials in a minute. Default 5.
	DenialFloor int `yaml:"denial_floor"`
	// ApprovalFloor: no approval burst under this many approval requests in a minute.
	// Default 10.
	ApprovalFloor int `yaml:"approval_floor"`
	// BytesFloor: no spike of bytes sent under this many request bytes in a minute. Default
	// 1048576 (1 MiB).
	BytesFloor int64 `yaml:"bytes_floor"`
	// BudgetFloor: no spike of budget burn under this share of budget limits taken in a minute
	// (the sum of each call's decision.budget_burn). Default 0.25: a quarter of a limit.
	BudgetFloor float64 `yaml:"budget_floor"`
	// OffHoursShare: a call in an hour of the day that held less than this share of the calls
	// learned is off hours. Default 0.005.
	OffHoursShare float64 `yaml:"off_hours_share"`
	// ApproveFor is how long the approve step holds the agent's matching calls for a person.
	// Default 24h.
	ApproveFor Duration `yaml:"approve_for"`
	// Ladder: each rule gives the step for findings of a detector (or "*") at or above a risk;
	// the most severe step of the rules that match applies. Default: first_seen_action at high
	// risk or above → approve; everything else → alert.
	Ladder []DetectRule `yaml:"ladder"`
}

// DetectRule is one rung of the containment ladder.
type DetectRule struct {
	Detector string `yaml:"detector"` // a detector's kind, or "*"
	MinRisk  string `yaml:"min_risk"` // low (default), medium, high or critical
	Step     string `yaml:"step"`     // alert, approve, suspend or kill
}

// DetectKinds are the detectors' names; DetectSteps the ladder's steps, mildest first.
var (
	DetectKinds = []string{"first_seen_action", "first_seen_resource", "first_seen_argument", "first_seen_host", "first_seen_transition",
		"rate_spike", "denial_spike", "bytes_spike", "budget_spike", "approval_burst", "off_hours"}
	DetectSteps = []string{"alert", "approve", "suspend", "kill"}
)

// Validate fills in the defaults and checks the values.
func (d *Detect) Validate() error {
	if d.LearningPeriod == 0 {
		d.LearningPeriod = Duration(168 * time.Hour)
	}
	if d.LearningCalls == 0 {
		d.LearningCalls = 500
	}
	if d.ZScore == 0 {
		d.ZScore = 4
	}
	if d.RateFloor == 0 {
		d.RateFloor = 20
	}
	if d.DenialFloor == 0 {
		d.DenialFloor = 5
	}
	if d.ApprovalFloor == 0 {
		d.ApprovalFloor = 10
	}
	if d.BytesFloor == 0 {
		d.BytesFloor = 1 << 20
	}
	if d.BudgetFloor == 0 {
		d.BudgetFloor = 0.25
	}
	if d.OffHoursShare == 0 {
		d.OffHoursShare = 0.005
	}
	if d.ApproveFor == 0 {
		d.ApproveFor = Duration(24 * time.Hour)
	}
	if d.Ladder == nil {
		d.Ladder = []DetectRule{{Detector: "first_seen_action", MinRisk: "high", Step: "approve"}}
	}
	switch {
	case d.LearningPeriod < 0 || d.LearningCalls < 0 || d.RateFloor < 0 || d.DenialFloor < 0 || d.ApprovalFloor < 0 || d.BytesFloor < 0 || d.ApproveFor < 0:
		return fmt.Errorf("detect: learning_period, learning_calls, rate_floor, denial_floor, approval_floor, bytes_floor and approve_for may not be negative")
	case d.BudgetFloor < 0:
		return fmt.Errorf("detect.budget_floor: may not be negative")
	case d.ZScore < 0:
		return fmt.Errorf("detect.z_score: may not be negative")
	case d.OffHoursShare < 0 || d.OffHoursShare >= 1:
		return fmt.Errorf("detect.off_hours_share: want a share from 0 to under 1, e.g. 0.005")
	}
	for i, r := range d.Ladder {
		if r.Detector != "*" && !slices.Contains(DetectKinds, r.Detector) {
			return fmt.Errorf("detect.ladder[%d].detector %q: want * or one of %v", i, r.Detector, DetectKinds)
		}
		switch r.MinRisk {
		case "", "low", "medium", "high", "critical":
		default:
			return fmt.Errorf("detect.ladder[%d].min_risk %q: want low, medium, high or critical", i, r.MinRisk)
		}
		if !slices.Contains(DetectSteps, r.Step) {
			return fmt.Errorf("detect.ladder[%d].step %q: want one of %v", i, r.Step, DetectSteps)
		}
	}
	return nil
}
