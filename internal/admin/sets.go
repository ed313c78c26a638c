package admin

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/cedar"
)

// ValueSet is the wire type apitype.ValueSet; see there.
type ValueSet = apitype.ValueSet

// ApplySet stores a named set as the next policy version, with the policies of the current one:
// sets are versioned, rolled back and audited (policy.apply) with the policies that read them.
func (s *Service) ApplySet(ctx context.Context, p *warden.Principal, name string, req apitype.SetApply) (*warden.PolicySet, error) {
	if err := warden.ValidateName("set", name); err != nil {
		return nil, err
	}
	if req.Values == nil {
		return nil, warden.Errorf(warden.EInvalid, `give the set's values: "values" is an array of strings ([] for none)`)
	}
	text, n, err := setFile(name, req.Values)
	if err != nil {
		return nil, err
	}
	comment, err := validateReason(req.Comment, false)
	if err != nil {
		return nil, err
	}
	if comment == "" {
		comment = fmt.Sprintf("set %s: %d values", name, n)
	}
	s.policyMu.Lock()
	defer s.policyMu.Unlock()
	current, version, err := s.currentPolicies(ctx)
	if err != nil {
		return nil, err
	}
	next := maps.Clone(current)
	next[cedar.SetPrefix+name] = text
	return s.storePolicies(ctx, p, next, version, warden.EventPolicyApply, comment)
}

// setFile returns the text of the file of the set name (cedar.SetText) and how many values it
// holds, or why values are not a set (cedar.ParseSet).
func setFile(name string, values []string) (text string, n int, err error) {
	text = cedar.SetText(values)
	parsed, err := cedar.ParseSet(text)
	if err != nil {
		return "", 0, warden.Errorf(warden.EInvalid, "set %s: %v", name, err)
	}
	return text, len(parsed), nil
}

// DeleteSet stores the next policy version without the set. A policy that still reads it fails
// to compile, and nothing is stored.
func (s *Service) DeleteSet(ctx context.Context, p *warden.Principal, name string) (*warden.PolicySet, error) {
	s.policyMu.Lock()
	defer s.policyMu.Unlock()
	current, version, err := s.currentPolicies(ctx)
	if err != nil {
		return nil, err
	}
	if _, ok := current[cedar.SetPrefix+name]; !ok {
		return nil, warden.Errorf(warden.ENotFound, "no set %q", name)
	}
	next := maps.Clone(current)
	delete(next, cedar.SetPrefix+name)
	return s.storePolicies(ctx, p, next, version, warden.EventPolicyApply, "delete set "+name)
}

// Sets returns the named sets of the policy version in force, by name.
func (s *Service) Sets(ctx context.Context) ([]ValueSet, error) {
	files, version, err := s.currentPolicies(ctx)
	if err != nil {
		return nil, err
	}
	out := []ValueSet{}
	for _, file := range slices.Sorted(maps.Keys(files)) {
		name, ok := cedar.SetName(file)
		if !ok {
			continue
		}
		vs, err := storedSet(name, files[file], version)
		if err != nil {
			return nil, err
		}
		out = append(out, *vs)
	}
	return out, nil
}

// Set returns one named set of the policy version in force, reading that set alone.
func (s *Service) Set(ctx context.Context, name string) (*ValueSet, error) {
	files, version, err := s.currentPolicies(ctx)
	if err != nil {
		return nil, err
	}
	text, ok := files[cedar.SetPrefix+name]
	if !ok {
		return nil, warden.Errorf(warden.ENotFound, "no set %q", name)
	}
	return storedSet(name, text, version)
}

// storedSet reads the stored text of the set name of a policy version.
func storedSet(name, text string, version int64) (*ValueSet, error) {
	values, err := cedar.ParseSet(text)
	if err != nil {
		return nil, warden.Errorf(warden.EInternal, "stored set %s does not parse: %v", name, err)
	}
	return &ValueSet{Name: name, Values: values, Version: version}, nil
}

// withSets returns files with the named sets of current beside them: candidate policies (policy
// test, replay) read the sets in force.
func withSets(files, current map[string]string) map[string]string {
	next := maps.Clone(files)
	for name, text := range current {
		if _, ok := cedar.SetName(name); ok {
			next[name] = text
		}
	}
	return next
}
