package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/wardenhq/warden"
)

// Profiles is the per-user CLI configuration ($XDG_CONFIG_HOME/warden/config.yaml, else
// ~/.config/warden/config.yaml, or WARDEN_CONFIG): servers and credentials by name, and the one
// in use, like kubectl's contexts. It holds session tokens, so it is written 0600 in a 0700
// directory, and refused when others may read it.
type Profiles struct {
	Current  string              `yaml:"current,omitempty"`
	Profiles map[string]*Profile `yaml:"profiles,omitempty"`
}

// Profile is one server and the credential for it: a session of `warden login` (token), or a
// reference to a file holding an admin token (token_file).
type Profile struct {
	Server    string    `yaml:"server"`
	Token     string    `yaml:"token,omitempty"`
	TokenFile string    `yaml:"token_file,omitempty"`
	Name      string    `yaml:"name,omitempty"` // who signed in
	Role      string    `yaml:"role,omitempty"`
	ExpiresAt time.Time `yaml:"expires_at,omitempty"`
}

const maxProfilesFile = 1 << 20

// profilesPath is where the CLI configuration lives.
func (inv *invocation) profilesPath() (string, error) {
	if p := inv.getenv("WARDEN_CONFIG"); p != "" {
		return p, nil
	}
	if dir := inv.getenv("XDG_CONFIG_HOME"); dir != "" {
		return filepath.Join(dir, "warden", "config.yaml"), nil
	}
	home := inv.getenv("HOME")
	if home == "" {
		var err error
		if home, err = os.UserHomeDir(); err != nil {
			return "", warden.Errorf(warden.EInvalid, "no home directory for the CLI configuration: set WARDEN_CONFIG")
		}
	}
	return filepath.Join(home, ".config", "warden", "config.yaml"), nil
}

// loadProfiles reads the CLI configuration; a missing file is an empty one.
func (inv *invocation) loadProfiles() (*Profiles, string, error) {
	path, err := inv.profilesPath()
	if err != nil {
		return nil, "", err
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &Profiles{Profiles: map[string]*Profile{}}, path, nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("CLI configuration: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, "", fmt.Errorf("CLI configuration: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, "", warden.Errorf(warden.EInvalid, "%s may be read by others (mode %o): it holds credentials; run chmod 600 %s", path, st.Mode().Perm(), path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxProfilesFile+1))
	if err != nil {
		return nil, "", fmt.Errorf("CLI configuration: %w", err)
	}
	p, err := parseProfiles(b)
	if err != nil {
		return nil, "", warden.Errorf(warden.EInvalid, "%s: %s", path, warden.ErrorMessage(err))
	}
	return p, path, nil
}

// parseProfiles reads a CLI configuration strictly: unknown keys are errors.
func parseProfiles(b []byte) (*Profiles, error) {
	if len(b) > maxProfilesFile {
		return nil, warden.Errorf(warden.EInvalid, "the file is larger than %d bytes", maxProfilesFile)
	}
	p := &Profiles{}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(p); err != nil && !errors.Is(err, io.EOF) {
		return nil, warden.Errorf(warden.EInvalid, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if p.Profiles == nil {
		p.Profiles = map[string]*Profile{}
	}
	for name, pr := range p.Profiles {
		if err := validProfileName(name); err != nil {
			return nil, err
		}
		if pr == nil || pr.Server == "" {
			return nil, warden.Errorf(warden.EInvalid, "profile %q has no server", name)
		}
		if pr.Token != "" && pr.TokenFile != "" {
			return nil, warden.Errorf(warden.EInvalid, "profile %q: set token or token_file, not both", name)
		}
	}
	if p.Current != "" && p.Profiles[p.Current] == nil {
		return nil, warden.Errorf(warden.EInvalid, "the current profile %q does not exist", p.Current)
	}
	return p, nil
}

func validProfileName(name string) error {
	if name == "" || len(name) > 64 || strings.IndexFunc(name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.')
	}) >= 0 {
		return warden.Errorf(warden.EInvalid, "profile name %q: use letters, digits, '-', '_' and '.' (at most 64)", name)
	}
	return nil
}

// saveProfiles writes the CLI configuration 0600 (in a 0700 directory), atomically.
func saveProfiles(path string, p *Profiles) error {
	b, err := yaml.Marshal(p)
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("CLI configuration: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".config-*.yaml")
	if err != nil {
		return fmt.Errorf("CLI configuration: %w", err)
	}
	defer os.Remove(tmp.Name()) // gone after a successful rename
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("CLI configuration: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("CLI configuration: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("CLI configuration: %w", err)
	}
	return os.Rename(tmp.Name(), path)
}

// profile is the profile in use: --profile, else WARDEN_PROFILE, else the current one; nil
// when there is none. A profile asked for by name must exist.
func (inv *invocation) profile() (string, *Profile, error) {
	name := inv.profileName
	if name == "" {
		name = inv.getenv("WARDEN_PROFILE")
	}
	ps, _, err := inv.loadProfiles()
	if err != nil {
		if name == "" && inv.getenv("WARDEN_CONFIG") == "" {
			// A broken file is reported when a profile is asked for; today's behaviour
			// (DATA/admin.token) does not depend on it.
			return "", nil, nil
		}
		return "", nil, err
	}
	if name == "" {
		name = ps.Current
	}
	if name == "" {
		return "", nil, nil
	}
	pr := ps.Profiles[name]
	if pr == nil {
		return "", nil, warden.Errorf(warden.ENotFound, "no profile %q: see warden config profiles", name)
	}
	return name, pr, nil
}

// credential is the profile's token: the session, or what its token file holds.
func (pr *Profile) credential() (string, error) {
	if pr.TokenFile != "" {
		b, err := readLimited(pr.TokenFile)
		if err != nil {
			return "", warden.Errorf(warden.EUnauthenticated, "the profile's token_file %s cannot be read: %v", pr.TokenFile, err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	if pr.Token == "" {
		return "", warden.Errorf(warden.EUnauthenticated, "the profile has no credential: run warden login --server %s", pr.Server)
	}
	return pr.Token, nil
}

func configUseProfile(ctx context.Context, inv *invocation) error {
	pos, err := inv.parse("NAME")
	if err != nil {
		return err
	}
	ps, path, err := inv.loadProfiles()
	if err != nil {
		return err
	}
	if ps.Profiles[pos[0]] == nil {
		return warden.Errorf(warden.ENotFound, "no profile %q: see warden config profiles", pos[0])
	}
	ps.Current = pos[0]
	if err := saveProfiles(path, ps); err != nil {
		return err
	}
	fmt.Fprintf(inv.env.Stdout, "Using profile %q (%s).\n", pos[0], ps.Profiles[pos[0]].Server)
	return nil
}

func configProfiles(ctx context.Context, inv *invocation) error {
	inv.fs.BoolVar(&inv.json, "json", false, "print JSON for programs")
	if _, err := inv.parse(); err != nil {
		return err
	}
	ps, _, err := inv.loadProfiles()
	if err != nil {
		return err
	}
	type row struct {
		Name    string `json:"name"`
		Current bool   `json:"current"`
		Server  string `json:"server"`
		Who     string `json:"who,omitempty"`
		Role    string `json:"role,omitempty"`
		Via     string `json:"credential"`
	}
	var rows []row
	for _, name := range slices.Sorted(maps.Keys(ps.Profiles)) {
		pr := ps.Profiles[name]
		via := "session"
		switch {
		case pr.TokenFile != "":
			via = "token_file " + pr.TokenFile
		case pr.Token == "":
			via = "none (signed out)"
		case !pr.ExpiresAt.IsZero() && time.Now().After(pr.ExpiresAt):
			via = "session (expired)"
		}
		rows = append(rows, row{name, name == ps.Current, pr.Server, pr.Name, pr.Role, via})
	}
	return inv.print(rows, func(w io.Writer) {
		lines := [][]string{}
		for _, r := range rows {
			mark := " "
			if r.Current {
				mark = "*"
			}
			lines = append(lines, []string{mark, r.Name, r.Server, r.Who, r.Role, r.Via})
		}
		table(w, []string{"", "NAME", "SERVER", "WHO", "ROLE", "CREDENTIAL"}, lines)
	})
}

func configCurrent(ctx context.Context, inv *invocation) error {
	if _, err := inv.parse(); err != nil {
		return err
	}
	ps, _, err := inv.loadProfiles()
	if err != nil {
		return err
	}
	if ps.Current == "" {
		return warden.Errorf(warden.ENotFound, "no current profile: run warden login --server URL, or warden config use-profile NAME")
	}
	fmt.Fprintln(inv.env.Stdout, ps.Current)
	return nil
}
