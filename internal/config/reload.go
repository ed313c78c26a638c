package config

import (
	"reflect"
	"strings"
)

// Reloadable lists the keys a running server takes again from its configuration file on SIGHUP:
// only what it can swap at once and safely. Every other change waits for a restart.
var Reloadable = []string{"log.level"}

// Changed lists the keys whose values differ between c and next: log.level and log.format each,
// every other top-level key as a whole.
func (c *Config) Changed(next *Config) []string {
	var keys []string
	if c.Log.Level != next.Log.Level {
		keys = append(keys, "log.level")
	}
	if c.Log.Format != next.Log.Format {
		keys = append(keys, "log.format")
	}
	a, b := reflect.ValueOf(c).Elem(), reflect.ValueOf(next).Elem()
	for i := range a.NumField() {
		key, _, _ := strings.Cut(a.Type().Field(i).Tag.Get("yaml"), ",")
		if key == "log" || key == "-" {
			continue
		}
		if !reflect.DeepEqual(a.Field(i).Interface(), b.Field(i).Interface()) {
			keys = append(keys, key)
		}
	}
	return keys
}
