package replicatest

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/wardenhq/warden/internal/config"
)

const deployDir = "../../deploy"

// composeFile is the part of deploy/compose.yaml the test reads.
type composeFile struct {
	Services map[string]struct {
		Image string `yaml:"image"`
		Build *struct {
			Context    string `yaml:"context"`
			Dockerfile string `yaml:"dockerfile"`
		} `yaml:"build"`
		Command     []string          `yaml:"command"`
		Hostname    string            `yaml:"hostname"`
		Environment map[string]string `yaml:"environment"`
		Volumes     []string          `yaml:"volumes"`
		DependsOn   any               `yaml:"depends_on"`
	} `yaml:"services"`
	Volumes map[string]any `yaml:"volumes"`
}

// TestComposeFile: deploy/compose.yaml is PostgreSQL, three warden replicas built from
// deploy/Dockerfile with one shared master key and store, and HAProxy with deploy/haproxy.cfg;
// every file it mounts or builds from exists, every named volume is declared, and the servers
// of haproxy.cfg are its replicas. (Docker is not needed: the file is read as YAML.)
func TestComposeFile(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(deployDir, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatalf("deploy/compose.yaml: %v", err)
	}
	if img := c.Services["postgres"].Image; !strings.HasPrefix(img, "postgres:") {
		t.Errorf("postgres service image %q", img)
	}
	if img := c.Services["haproxy"].Image; !strings.HasPrefix(img, "haproxy:") {
		t.Errorf("haproxy service image %q", img)
	}
	replicas := []string{"warden-r1", "warden-r2", "warden-r3"}
	hosts := map[string]bool{}
	for _, name := range replicas {
		s, ok := c.Services[name]
		if !ok {
			t.Errorf("no service %s", name)
			continue
		}
		if s.Build == nil || !exists(filepath.Join(deployDir, s.Build.Context, s.Build.Dockerfile)) || !exists(filepath.Join(deployDir, s.Build.Context, "go.mod")) {
			t.Errorf("%s: its build does not name the repository and its Dockerfile: %+v", name, s.Build)
		}
		// The image runs as its own user and listens where its command says: on every address
		// of the container, for haproxy.
		if !slices.Equal(s.Command, []string{"serve", "--listen", "0.0.0.0:8787", "--config", "/etc/warden/warden.yaml"}) {
			t.Errorf("%s: command %v", name, s.Command)
		}
		if s.Environment["WARDEN_MASTER_KEY"] != c.Services[replicas[0]].Environment["WARDEN_MASTER_KEY"] || !strings.Contains(s.Environment["WARDEN_MASTER_KEY"], "${WARDEN_MASTER_KEY") {
			t.Errorf("%s: WARDEN_MASTER_KEY %q is not the fleet's one key from the environment", name, s.Environment["WARDEN_MASTER_KEY"])
		}
		if !strings.HasPrefix(s.Environment["WARDEN_STORE"], "postgres://") || !strings.Contains(s.Environment["WARDEN_STORE"], "@postgres:") {
			t.Errorf("%s: WARDEN_STORE %q is not the postgres service", name, s.Environment["WARDEN_STORE"])
		}
		if s.Hostname == "" || hosts[s.Hostname] {
			t.Errorf("%s: hostname %q (its replica id) is empty or another replica's", name, s.Hostname)
		}
		hosts[s.Hostname] = true
	}
	for name, s := range c.Services {
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, ".") {
				if !exists(filepath.Join(deployDir, src)) {
					t.Errorf("%s mounts %s, which does not exist in deploy/", name, src)
				}
			} else if _, ok := c.Volumes[src]; !ok {
				t.Errorf("%s mounts the volume %s, which is not declared", name, src)
			}
		}
	}
	cfg, err := os.ReadFile(filepath.Join(deployDir, "haproxy.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	servers := regexp.MustCompile(`(?m)^\s*server\s+\S+\s+([^:\s]+):8787`).FindAllStringSubmatch(string(cfg), -1)
	var named []string
	for _, m := range servers {
		named = append(named, m[1])
	}
	if !slices.Equal(named, replicas) {
		t.Errorf("deploy/haproxy.cfg's servers are %v, want the replicas %v", named, replicas)
	}
}

// TestDeployConfigLoads: the configuration the compose replicas share is valid for warden: no
// unknown key, every value in range.
func TestDeployConfigLoads(t *testing.T) {
	c := config.Default()
	if err := c.Load(filepath.Join(deployDir, "warden.yaml")); err != nil {
		t.Fatal(err)
	}
	c.Store = "postgres://warden@postgres:5432/warden"
	if err := c.Validate(); err != nil {
		t.Fatalf("deploy/warden.yaml: %v", err)
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
