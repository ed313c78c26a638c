package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apiclient"
	"github.com/wardenhq/warden/internal/apitype"
)

var setCommands = []command{
	{"set apply", "NAME FILE [--comment TEXT]", "store a named value set (one value a line, or a JSON array) as a new policy version: Set::\"NAME\".values in policies", setApply},
	{"set list", "", "list the named value sets in force", setList},
	{"set show", "NAME", "print a named value set's values", setShow},
	{"set delete", "NAME", "remove a named value set (refused while a policy reads it)", setDelete},
}

// parseSetFile reads a set's values: a JSON array of strings, or one value a line, with blank
// lines and lines starting with # left out and each line's surrounding spaces trimmed.
func parseSetFile(text string) ([]string, error) {
	if strings.HasPrefix(strings.TrimSpace(text), "[") {
		var values []string
		if err := json.Unmarshal([]byte(text), &values); err != nil {
			return nil, usagef("the file starts with [ but is not a JSON array of strings: %v", err)
		}
		return values, nil
	}
	values := []string{}
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		values = append(values, line)
	}
	return values, nil
}

func setApply(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	var req apitype.SetApply
	inv.fs.StringVar(&req.Comment, "comment", "", "what changed and why (kept with the version)")
	pos, err := inv.parse("NAME", "FILE")
	if err != nil {
		return err
	}
	b, err := readLimited(pos[1])
	if err != nil {
		return err
	}
	if req.Values, err = parseSetFile(string(b)); err != nil {
		return err
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	ps, err := c.ApplySet(ctx, pos[0], req)
	if err != nil {
		return err
	}
	return inv.print(ps, func(w io.Writer) {
		fmt.Fprintf(w, "Set %s stored: policy version %d in force.\n", pos[0], ps.Version)
	})
}

func setList(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	if _, err := inv.parse(); err != nil {
		return err
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	sets, err := c.Sets(ctx)
	if err != nil {
		return err
	}
	return inv.print(sets, func(w io.Writer) {
		if len(sets) == 0 {
			fmt.Fprintln(w, "No sets.")
			return
		}
		fmt.Fprintf(w, "%-32s %8s\n", "NAME", "VALUES")
		for _, s := range sets {
			fmt.Fprintf(w, "%-32s %8d\n", s.Name, len(s.Values))
		}
	})
}

func setShow(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	return byName(inv, func(c *apiclient.Client, name string) (*apitype.ValueSet, error) { return c.Set(ctx, name) },
		func(w io.Writer, s *apitype.ValueSet) {
			for _, v := range s.Values {
				fmt.Fprintln(w, v)
			}
		})
}

func setDelete(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	var name string
	return byName(inv, func(c *apiclient.Client, n string) (*warden.PolicySet, error) { name = n; return c.DeleteSet(ctx, n) },
		func(w io.Writer, ps *warden.PolicySet) {
			fmt.Fprintf(w, "Set %s removed: policy version %d in force.\n", name, ps.Version)
		})
}
