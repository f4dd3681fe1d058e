package zkconn

// MultiReads is how many multiRead requests c had answered.
func MultiReads(c *Conn) int64 { return c.multiReads.Load() }

// ReadsOneByOne reports whether c gave up multiRead for its server.
func ReadsOneByOne(c *Conn) bool { return c.noMultiRead.Load() }
