-- The dependency locks of npm packages (issue 15): the package-lock.json npm wrote when a
-- package was installed at tool add, by the sha256 digest of its bytes (tools.package's
-- lock_digest). Every later install on any replica uses it with npm ci.

CREATE TABLE tool_package_locks (
	digest TEXT NOT NULL PRIMARY KEY,
	lock   TEXT NOT NULL
) STRICT;
