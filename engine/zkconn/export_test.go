package zkconn

// MultiReads is how many multiRead requests c had answered.
func MultiReads(c *Conn) int64 { return c.multiReads.Load() }
