package dispatch

// Sessions returns how many consumer, reply and probe connections b has
// opened, for tests that show which a failure restarted.
func Sessions(b *Broker) (consumer, reply, probe int64) {
	return b.sessions.Load(), b.replies.sessions.Load(), b.replies.probe.dials.Load()
}
