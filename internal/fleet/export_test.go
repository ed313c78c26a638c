package fleet

// ListenPID is the PostgreSQL backend of the replica's LISTEN connection, for tests that cut it.
func (p *Postgres) ListenPID() uint32 { return p.listenPID.Load() }
