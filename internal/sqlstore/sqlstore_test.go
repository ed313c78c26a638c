package sqlstore

import (
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

func TestRebind(t *testing.T) {
	tests := []struct {
		numbered bool
		in, want string
	}{
		{false, `SELECT a FROM t WHERE b = ? AND c = ?`, `SELECT a FROM t WHERE b = ? AND c = ?`},
		{true, `SELECT a FROM t WHERE b = ? AND c = ?`, `SELECT a FROM t WHERE b = $1 AND c = $2`},
		{true, `SELECT 'ü' FROM t`, `SELECT 'ü' FROM t`},
		{true, strings.Repeat("?,", 11) + "?", "$1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12"},
	}
	for _, tt := range tests {
		if got := (Dialect{Numbered: tt.numbered}).rebind(tt.in); got != tt.want {
			t.Errorf("rebind(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestPrefixEnd(t *testing.T) {
	tests := []struct {
		prefix, end string
		ok          bool
	}{
		{"", "", false},
		{"agent.", "agent/", true},
		{"a", "b", true},
		{"x\u007f", "x\u0080", true},
		{"é", "ê", true},
		{"a\U0010ffff", "b", true},
		{"\U0010ffff", "", false},
		{"a\ud7ff", "a\ue000", true},
		{"a\xfe", "a\xff", true},
		{"a\xff", "b", true},
	}
	for _, tt := range tests {
		end, ok := prefixEnd(tt.prefix)
		if end != tt.end || ok != tt.ok {
			t.Errorf("prefixEnd(%q) = %q, %v; want %q, %v", tt.prefix, end, ok, tt.end, tt.ok)
		}
		if !ok {
			continue
		}
		// The bound is above the prefix and everything that extends it.
		for _, s := range []string{tt.prefix, tt.prefix + "\x00", tt.prefix + "\U0010ffff\U0010ffff", tt.prefix + "\xff"} {
			if s >= end {
				t.Errorf("prefixEnd(%q) = %q, not above %q", tt.prefix, end, s)
			}
		}
	}
}

func TestAuditLimit(t *testing.T) {
	for _, tt := range []struct{ in, want int }{{-5, 100}, {0, 100}, {1, 1}, {1000, 1000}, {1001, 1000}} {
		if got := auditLimit(tt.in); got != tt.want {
			t.Errorf("auditLimit(%d) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestTimeColumns(t *testing.T) {
	tests := []struct {
		name  string
		in    time.Time
		bound int64
	}{
		{"zero", time.Time{}, minTime.UnixNano()},
		{"epoch", time.Unix(0, 0), 0},
		{"nanoseconds", time.Unix(1, 5), 1_000_000_005},
		{"too late", time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), maxTime.UnixNano()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := boundNanos(tt.in); got != tt.bound {
				t.Errorf("boundNanos = %d, want %d", got, tt.bound)
			}
			v, err := unixNanos(tt.in).Value()
			if tt.in.After(maxTime) {
				if err == nil {
					t.Fatalf("stored %v as %v", tt.in, v)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var back time.Time
			if err := (timeColumn{&back}).Scan(v); err != nil {
				t.Fatal(err)
			}
			if !back.Equal(tt.in) || back.IsZero() != tt.in.IsZero() || back.Location() != time.UTC {
				t.Fatalf("%v stored as %v reads back as %v", tt.in, v, back)
			}
		})
	}
}

func TestReadMigrations(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	tests := []struct {
		name    string
		files   fstest.MapFS
		want    []int64
		wantErr string
	}{
		{"ordered by version, not by name", fstest.MapFS{
			"0010_ten.sql": file("10"), "0002_two.sql": file("2"), "0001_one.sql": file("1"), "README": file("not SQL"),
		}, []int64{1, 2, 10}, ""},
		{"none", fstest.MapFS{}, nil, ""},
		{"no version", fstest.MapFS{"init.sql": file("")}, nil, "init.sql"},
		{"version zero", fstest.MapFS{"0000_init.sql": file("")}, nil, "0000_init.sql"},
		{"same version", fstest.MapFS{"0001_a.sql": file(""), "1_b.sql": file("")}, nil, "same version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readMigrations(tt.files)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var versions []int64
			for _, m := range got {
				versions = append(versions, m.version)
				if want := strings.TrimLeft(strings.Split(m.name, "_")[0], "0"); m.sql != want {
					t.Errorf("migration %s holds %q", m.name, m.sql)
				}
			}
			if !slices.Equal(versions, tt.want) {
				t.Fatalf("versions %v, want %v", versions, tt.want)
			}
		})
	}
}
