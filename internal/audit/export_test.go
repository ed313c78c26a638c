package audit

// Queued is how many appends wait in the queue for the writer, so that a test can wait until
// its appends are queued rather than sleep and hope they are.
func (l *Log) Queued() int { return len(l.queue) }

// Closing reports whether Close has begun: no Append is accepted any more.
func (l *Log) Closing() bool {
	l.closeMu.RLock()
	defer l.closeMu.RUnlock()
	return l.closed
}
