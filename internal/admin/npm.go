package admin

import (
	"context"
	"fmt"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/npmpkg"
)

// NPMPinner verifies and installs the npm package of a tool being added (npmpkg.Pinner).
type NPMPinner interface {
	PinTool(ctx context.Context, t *warden.Tool, req npmpkg.Request) error
}

// npmTool fills in what ToolOf knows of a --npm tool: a local server whose package is named,
// to be pinned by pinNPM.
func npmTool(t *warden.Tool, spec ToolSpec) error {
	name, version, err := npmpkg.ParseSpec(spec.NPM)
	if err != nil {
		return err
	}
	if spec.Bin != "" {
		if err := npmpkg.ValidateBin(spec.Bin); err != nil {
			return err
		}
	}
	t.Kind = warden.ToolMCPCommand
	t.Package = &warden.ToolPackage{Source: warden.PackageNPM, Name: name, Version: version, Bin: spec.Bin}
	return nil
}

// npmRequest is what pinNPM asks of the registry for a spec, the reason checked.
func npmRequest(spec ToolSpec) (npmpkg.Request, error) {
	name, version, err := npmpkg.ParseSpec(spec.NPM)
	if err != nil {
		return npmpkg.Request{}, err
	}
	req := npmpkg.Request{Name: name, Version: version, Bin: spec.Bin}
	if spec.AllowUnsigned {
		if req.Reason, err = validateReason(spec.UnsignedReason, true); err != nil {
			return npmpkg.Request{}, warden.Errorf(warden.EInvalid, "--allow-unsigned needs a reason: %s", warden.ErrorMessage(err))
		}
		req.AllowUnsigned = true
	} else if spec.UnsignedReason != "" {
		return npmpkg.Request{}, warden.Errorf(warden.EInvalid, "a reason for an unsigned package goes with --allow-unsigned")
	}
	return req, nil
}

// pinNPM verifies, keeps and installs a --npm tool's package, filling in its Package and
// Command. A refusal is recorded (admin.tool.refuse) and changes nothing else.
func (s *Service) pinNPM(ctx context.Context, p *warden.Principal, t *warden.Tool, spec ToolSpec) error {
	req, err := npmRequest(spec)
	if err == nil {
		if s.npm == nil {
			err = warden.Errorf(warden.EUnavailable, "this server cannot install npm packages")
		} else {
			err = s.npm.PinTool(ctx, t, req)
		}
	}
	if err == nil {
		return nil
	}
	ev := &warden.AuditEvent{
		Type:     warden.EventToolRefuse,
		Actor:    humanActor(ctx, p),
		Target:   warden.EventTarget{Tool: t.Name, Resource: "package:" + spec.NPM},
		Decision: warden.EventDecision{Effect: warden.EffectDeny, Reason: warden.ReasonPackageUnverified, Message: warden.ErrorMessage(err)},
	}
	if aerr := s.audit.Append(ctx, ev); aerr != nil {
		return aerr
	}
	return err
}

// npmTarget describes a pinned package for the add event and the plan.
func npmTarget(pkg *warden.ToolPackage) string {
	s := fmt.Sprintf("npm %s@%s", pkg.Name, pkg.Version)
	if pkg.Digest == "" {
		return s
	}
	return fmt.Sprintf("%s bin %s digest %s integrity %s provenance %s", s, pkg.Bin, pkg.Digest, pkg.Integrity, pkg.Provenance)
}

// samePackageRequest says whether an npm tool as stored is what a spec asks for: the same
// package, version and (when named) bin. Its pinned package and command then carry over.
func samePackageRequest(cur, want *warden.Tool) bool {
	c, w := cur.Package, want.Package
	return c != nil && w != nil && c.Source == warden.PackageNPM && w.Source == warden.PackageNPM &&
		c.Name == w.Name && c.Version == w.Version && (w.Bin == "" || w.Bin == c.Bin)
}

// pinApplied pins the npm packages of the tools an apply creates or changes, before anything
// is stored: a package that fails its checks fails the whole apply.
func (s *Service) pinApplied(ctx context.Context, p *warden.Principal, plan *Plan, d *desired) error {
	for _, c := range plan.Changes {
		spec, ok := d.npm[c.Name]
		if c.Kind != "tool" || !ok || (c.Op != "create" && c.Op != "update") {
			continue
		}
		want := d.tools[c.Name]
		if want.Package.Digest != "" {
			continue // carried over: the package asked for is the one pinned
		}
		if err := s.pinNPM(ctx, p, want, spec); err != nil {
			return err
		}
	}
	return nil
}
