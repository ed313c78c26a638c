package scan

import "encoding/json"

// SARIF writes findings as a SARIF 2.1.0 log, for code-scanning dashboards: one run by
// "warden scan", every rule described, each finding a result at its source, line and column
// (columns in Unicode code points, as the log declares).
func SARIF(version string, fs []Finding) ([]byte, error) {
	type message struct {
		Text string `json:"text"`
	}
	type rule struct {
		ID               string  `json:"id"`
		ShortDescription message `json:"shortDescription"`
		DefaultConfig    struct {
			Level string `json:"level"`
		} `json:"defaultConfiguration"`
	}
	type region struct {
		StartLine   int `json:"startLine"`
		StartColumn int `json:"startColumn"`
	}
	type location struct {
		PhysicalLocation struct {
			ArtifactLocation struct {
				URI string `json:"uri"`
			} `json:"artifactLocation"`
			Region region `json:"region"`
		} `json:"physicalLocation"`
	}
	type result struct {
		RuleID     string            `json:"ruleId"`
		Level      string            `json:"level"`
		Message    message           `json:"message"`
		Locations  []location        `json:"locations"`
		Properties map[string]string `json:"properties,omitempty"`
	}
	rules := make([]rule, len(Rules))
	for i, r := range Rules {
		rules[i].ID = r.ID
		rules[i].ShortDescription.Text = r.Description
		rules[i].DefaultConfig.Level = sarifLevel(r.Severity)
	}
	results := make([]result, 0, len(fs))
	for _, f := range fs {
		var loc location
		loc.PhysicalLocation.ArtifactLocation.URI = f.Source
		loc.PhysicalLocation.Region = region{StartLine: max(f.Line, 1), StartColumn: max(f.Column, 1)}
		r := result{RuleID: f.Rule, Level: sarifLevel(f.Severity), Message: message{f.Message}, Locations: []location{loc}}
		if f.Excerpt != "" {
			r.Properties = map[string]string{"excerpt": f.Excerpt, "severity": f.Severity.String()}
		}
		results = append(results, r)
	}
	log := map[string]any{
		"$schema": "https://json.schemastore.org/sarif-2.1.0.json",
		"version": "2.1.0",
		"runs": []any{map[string]any{
			"tool": map[string]any{"driver": map[string]any{
				"name": "warden scan", "version": version, "informationUri": "https://github.com/wardenhq/warden/blob/main/docs/supply-chain.md",
				"rules": rules,
			}},
			"columnKind": "unicodeCodePoints",
			"results":    results,
		}},
	}
	return json.MarshalIndent(log, "", "  ")
}

// sarifLevel maps a severity to SARIF's levels: high blocks (error), medium warns, low notes.
func sarifLevel(s Severity) string {
	switch {
	case s >= SeverityHigh:
		return "error"
	case s == SeverityMedium:
		return "warning"
	}
	return "note"
}
