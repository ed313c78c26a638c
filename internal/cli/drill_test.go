package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestDrillReplicasFlag: a wrong --replicas is refused with a clear message before anything is
// contacted or created.
func TestDrillReplicasFlag(t *testing.T) {
	env := func(k string) string {
		if k == "WARDEN_TOKEN" {
			return "wadm_test"
		}
		return ""
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--replicas", "http://127.0.0.1:1"}, "two or more URLs"},
		{[]string{"--replicas", "http://127.0.0.1:1,"}, "two or more URLs"},
		{[]string{"--self", "--replicas", "http://127.0.0.1:1,http://127.0.0.1:2"}, "excludes --self"},
		{[]string{"--addr", "http://127.0.0.1:3", "--replicas", "http://127.0.0.1:1,http://127.0.0.1:2"}, "first replica"},
		{[]string{"--replicas", "http://127.0.0.1:1,http://192.0.2.1:2"}, "not on 127.0.0.1"},
		{[]string{"--replicas", "http://127.0.0.1:1,http://127.0.0.1:1"}, "twice"},
	} {
		var out, errOut bytes.Buffer
		err := Run(context.Background(), append([]string{"drill", "kill"}, c.args...), Env{Stdout: &out, Stderr: &errOut, Getenv: env})
		if err == nil || !strings.Contains(ErrorLine(err)+errOut.String(), c.want) {
			t.Errorf("drill kill %v: %v (stderr %q), want an error saying %q", c.args, err, errOut.String(), c.want)
		}
	}
}
