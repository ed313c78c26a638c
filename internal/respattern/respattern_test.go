package respattern

import (
	"slices"
	"testing"
)

func TestCover(t *testing.T) {
	for _, tt := range []struct {
		in, want []string
	}{
		{[]string{"repo:acme/web", "repo:acme/api"}, []string{"repo:acme/*"}},
		{[]string{"repo:acme/web", "repo:other/api"}, []string{"repo:acme/web", "repo:other/api"}},
		{[]string{"repo:acme/web", "repo:acme/web"}, []string{"repo:acme/web"}},
		{[]string{"a/b/c", "a/b/d", "a/x"}, []string{"a/b/*", "a/x"}},
		{[]string{"", "host-a", "host-b"}, []string{"", "host-a", "host-b"}},
		{[]string{"dir/", "dir/x"}, []string{"dir/", "dir/x"}},
	} {
		if got := Cover(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("Cover(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestOf(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", ""},
		{"repo:acme/widgets", "repo:acme/*"},
		{"repo:acme/widgets/issues/17", "repo:acme/widgets/issues/*"},
		{"/v1/users/123/orders", "/v1/users/*/orders"},
		{"/v1/orders", "/v1/orders"},
		{"/v1/users/0b7f9f0e-3c2a-4b8e-9d6f-1a2b3c4d5e6f", "/v1/users/*"},
		{"/v1/blobs/deadbeef42", "/v1/blobs/*"},
		{"/v1/blobs/deadbeef", "/v1/blobs/deadbeef"}, // hex letters alone: a word
		{"/v1/blobs/abc123", "/v1/blobs/abc123"},     // too short for a hex id
		{"/v1/people/ann@example.com/mail", "/v1/people/*/mail"},
		{"/v1/search?q=secret", "/v1/search?*"},
		{"user:42", "user:*"},
		{"user:ann", "user:ann"},
		{"mailto:ann@example.com", "mailto:*"},
		{"https://api.example.com/v1/users/7", "https://api.example.com/v1/users/*"},
		{"https://api.example.com/v1/users", "https://api.example.com/v1/users"},
		{"msg", "msg"},
		{"a/b/c", "a/b/c"}, // no kind: a path, only identifiers generalised
	} {
		if got := Of(tt.in); got != tt.want {
			t.Errorf("Of(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
