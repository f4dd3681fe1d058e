// Package zkserver runs real ZooKeeper server processes on the loopback
// interface: a standalone server or an ensemble, each with free ports and a
// fresh data directory, with helpers to stop, kill, restart and pause nodes.
// Tests, benchmarks, the fault suite and `jobengine dev` all start ZooKeeper
// through it.
package zkserver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Default locations of the Debian zookeeper package.
const (
	DefaultJar      = "/usr/share/java/zookeeper.jar"
	DefaultSLF4JJar = "/usr/share/java/slf4j-simple.jar"
	mainClass       = "org.apache.zookeeper.server.quorum.QuorumPeerMain"
)

// ErrNotInstalled is returned when java or the ZooKeeper jars are missing.
var ErrNotInstalled = errors.New("zkserver: ZooKeeper is not installed (on Debian: apt-get install -y zookeeper)")

// Options configure a cluster. The zero value is a standalone server.
type Options struct {
	// Servers is the number of nodes: 1 (standalone, the default) or an
	// ensemble of 3 or more.
	Servers int
	// Dir holds the nodes' data, config and logs; a new temporary directory
	// when empty (removed by Close).
	Dir string
	// TickTime is ZooKeeper's tick; sessions may last 2–20 ticks. Default
	// 250ms, so tests can use short session timeouts.
	TickTime time.Duration
	// HeapMB is the JVM heap of each node (default 256).
	HeapMB int
	// StartTimeout bounds the wait for every node to serve (default 60s).
	StartTimeout time.Duration
	// Jar and SLF4JJar override the Debian jar locations.
	Jar, SLF4JJar string
	// ExtraConfig lines are appended to every zoo.cfg.
	ExtraConfig []string
	// JuteMaxBuffer, when positive, sets the servers' jute.maxbuffer: the
	// longest request they accept (ZooKeeper's default is 1048575 bytes).
	// A server answers a longer request by closing the connection.
	JuteMaxBuffer int

	// TLSKeyStore and TLSTrustStore are PEM files: the server's
	// certificate chain followed by its private key, and the certificates
	// of the CAs whose clients are accepted. Both set, every node also
	// serves TLS on its SecurePort (Netty, ZooKeeper's secureClientPort).
	// The plain ClientPort stays, on the loopback interface, for the
	// harness's four-letter probes.
	TLSKeyStore, TLSTrustStore string
	// TLSClientAuth is ZooKeeper's ssl.clientAuth: "need" (the default: a
	// client must present a certificate the trust store accepts), "want"
	// or "none".
	TLSClientAuth string
	// RequireAuth makes the nodes refuse every request of a client that
	// has not authenticated with the digest scheme (enforce.auth).
	RequireAuth bool
	// SuperDigest, "user:HASH" as zkconn.DigestID makes it, is a super
	// user that passes every ACL, for tests that inspect what others wrote.
	SuperDigest string
	// ClientPort is the client port of a standalone server; 0: a free
	// port. Start fails when it is taken.
	ClientPort int
	// PeerAddr, when set, gives the address node from reaches node to's
	// quorum or election port (port) at (addr, 127.0.0.1:port): a test
	// puts a proxy there, which it can block to cut one node off from the
	// others while its clients still reach it. Each node's zoo.cfg lists
	// its own ports as they are and the others' as PeerAddr gives them.
	// A node also tells a peer it connects to its own election address,
	// and the peer may connect back there: a proxy of election ports must
	// rewrite that (see ElectionHello).
	PeerAddr func(from, to int, port PeerPort, addr string) (string, error)
}

// PeerPort names a port nodes of an ensemble reach each other at.
type PeerPort string

// The peer ports.
const (
	QuorumPort   PeerPort = "quorum"   // followers to the leader
	ElectionPort PeerPort = "election" // leader election, between every two nodes
)

// NettyJars are the jars the Netty server (TLS) needs besides those that
// zookeeper.jar's manifest names.
var NettyJars = []string{"/usr/share/java/netty-codec.jar", "/usr/share/java/netty-resolver.jar"}

func (o *Options) tls() bool { return o.TLSKeyStore != "" && o.TLSTrustStore != "" }

// Server is one ZooKeeper node.
type Server struct {
	ID         int
	ClientPort int
	// SecurePort serves TLS when Options name a key store; 0 otherwise.
	SecurePort   int
	quorumPort   int
	electionPort int
	Dir          string

	opts *Options
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Cluster is a set of nodes forming one ZooKeeper service.
type Cluster struct {
	Servers []*Server
	opts    Options
	ownDir  bool
}

// Installed reports whether the jars and java are present.
func Installed() error {
	if _, err := exec.LookPath("java"); err != nil {
		return fmt.Errorf("%w: java not found", ErrNotInstalled)
	}
	for _, j := range []string{DefaultJar, DefaultSLF4JJar} {
		if _, err := os.Stat(j); err != nil {
			return fmt.Errorf("%w: %s not found", ErrNotInstalled, j)
		}
	}
	return nil
}

// Start starts a cluster and waits until every node serves.
func Start(opts Options) (*Cluster, error) {
	if opts.Servers <= 0 {
		opts.Servers = 1
	}
	if opts.Servers == 2 {
		return nil, errors.New("zkserver: an ensemble needs 3 or more servers (2 cannot survive a failure)")
	}
	if opts.TickTime <= 0 {
		opts.TickTime = 250 * time.Millisecond
	}
	if opts.HeapMB <= 0 {
		opts.HeapMB = 256
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 60 * time.Second
	}
	if opts.Jar == "" {
		opts.Jar = DefaultJar
	}
	if opts.SLF4JJar == "" {
		opts.SLF4JJar = DefaultSLF4JJar
	}
	if opts.Jar == DefaultJar {
		if err := Installed(); err != nil {
			return nil, err
		}
	}
	if opts.tls() && opts.Jar == DefaultJar {
		for _, j := range NettyJars {
			if _, err := os.Stat(j); err != nil {
				return nil, fmt.Errorf("%w: %s not found (TLS needs Netty; on Debian: apt-get install -y libnetty-java)", ErrNotInstalled, j)
			}
		}
	}
	c := &Cluster{opts: opts}
	if opts.Dir == "" {
		d, err := os.MkdirTemp("", "jobengine-zk-")
		if err != nil {
			return nil, err
		}
		c.opts.Dir, c.ownDir = d, true
	}
	if (opts.TLSKeyStore == "") != (opts.TLSTrustStore == "") {
		return nil, errors.New("zkserver: TLS needs both a key store and a trust store")
	}
	if opts.ClientPort != 0 && opts.Servers != 1 {
		return nil, errors.New("zkserver: a client port can be chosen for a standalone server only")
	}
	per := 3
	if opts.tls() {
		per = 4
	}
	ports, err := FreePorts(per * opts.Servers)
	if err != nil {
		return nil, err
	}
	if opts.ClientPort != 0 {
		ports[0] = opts.ClientPort
	}
	for i := 0; i < opts.Servers; i++ {
		s := &Server{
			ID:           i + 1,
			ClientPort:   ports[per*i],
			quorumPort:   ports[per*i+1],
			electionPort: ports[per*i+2],
			Dir:          filepath.Join(c.opts.Dir, fmt.Sprintf("zk%d", i+1)),
			opts:         &c.opts,
		}
		if opts.tls() {
			s.SecurePort = ports[per*i+3]
		}
		c.Servers = append(c.Servers, s)
	}
	for _, s := range c.Servers {
		if err := s.writeConfig(c.Servers); err != nil {
			c.Close()
			return nil, err
		}
		if err := s.Start(); err != nil {
			c.Close()
			return nil, err
		}
	}
	if err := c.WaitReady(opts.StartTimeout); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (s *Server) writeConfig(all []*Server) error {
	data := filepath.Join(s.Dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "tickTime=%d\n", s.opts.TickTime.Milliseconds())
	fmt.Fprintf(&b, "dataDir=%s\n", data)
	fmt.Fprintf(&b, "clientPort=%d\n", s.ClientPort)
	b.WriteString("clientPortAddress=127.0.0.1\n")
	b.WriteString("admin.enableServer=false\n")
	b.WriteString("4lw.commands.whitelist=srvr,mntr,ruok,stat,conf\n")
	b.WriteString("maxClientCnxns=0\n")
	b.WriteString("initLimit=40\nsyncLimit=20\n")
	b.WriteString("autopurge.purgeInterval=0\n")
	if len(all) > 1 {
		for _, o := range all {
			quorum, election := fmt.Sprintf("127.0.0.1:%d", o.quorumPort), fmt.Sprintf("127.0.0.1:%d", o.electionPort)
			if o != s && s.opts.PeerAddr != nil {
				var err error
				if quorum, err = s.opts.PeerAddr(s.ID, o.ID, QuorumPort, quorum); err != nil {
					return err
				}
				if election, err = s.opts.PeerAddr(s.ID, o.ID, ElectionPort, election); err != nil {
					return err
				}
			}
			fmt.Fprintf(&b, "server.%d=%s:%s\n", o.ID, quorum, portOf(election))
		}
		if err := os.WriteFile(filepath.Join(data, "myid"), []byte(fmt.Sprintf("%d\n", s.ID)), 0o644); err != nil {
			return err
		}
	}
	if s.opts.tls() {
		clientAuth := s.opts.TLSClientAuth
		if clientAuth == "" {
			clientAuth = "need"
		}
		fmt.Fprintf(&b, "secureClientPort=%d\n", s.SecurePort)
		b.WriteString("secureClientPortAddress=127.0.0.1\n")
		b.WriteString("serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\n")
		fmt.Fprintf(&b, "ssl.keyStore.location=%s\nssl.keyStore.type=PEM\n", s.opts.TLSKeyStore)
		fmt.Fprintf(&b, "ssl.trustStore.location=%s\nssl.trustStore.type=PEM\n", s.opts.TLSTrustStore)
		fmt.Fprintf(&b, "ssl.clientAuth=%s\n", clientAuth)
	}
	if s.opts.RequireAuth {
		b.WriteString("authProvider.1=org.apache.zookeeper.server.auth.DigestAuthenticationProvider\n")
		b.WriteString("enforce.auth.enabled=true\nenforce.auth.schemes=digest\n")
	}
	if s.opts.SuperDigest != "" {
		fmt.Fprintf(&b, "DigestAuthenticationProvider.superDigest=%s\n", s.opts.SuperDigest)
	}
	for _, l := range s.opts.ExtraConfig {
		b.WriteString(l + "\n")
	}
	return os.WriteFile(s.configPath(), []byte(b.String()), 0o644)
}

// ElectionHello rewrites the hello a ZooKeeper node sends on a connection
// to a peer's election port (QuorumCnxManager's initial message: a
// negative protocol version, its id, then the length and text of its
// election addresses, big-endian) to name the address back() gives; a
// hello of the old protocol (an id alone) passes as it is. A proxy of a
// peer's election port (Options.PeerAddr) runs it on each connection
// before it forwards the rest, with back() the proxy to the connecting
// node, so that the peer connects back through a proxy too; back()
// returning "" keeps the address.
func ElectionHello(back func() string) func(client io.Reader, server io.Writer) error {
	return func(client io.Reader, server io.Writer) error {
		var head [20]byte
		if _, err := io.ReadFull(client, head[:8]); err != nil {
			return err
		}
		if int64(binary.BigEndian.Uint64(head[:8])) >= 0 {
			_, err := server.Write(head[:8])
			return err
		}
		if _, err := io.ReadFull(client, head[8:]); err != nil {
			return err
		}
		n := binary.BigEndian.Uint32(head[16:])
		if n > 4096 {
			return fmt.Errorf("an election hello with %d bytes of addresses", n)
		}
		addr := make([]byte, n)
		if _, err := io.ReadFull(client, addr); err != nil {
			return err
		}
		if b := back(); b != "" {
			addr = []byte(b)
		}
		out := append(head[:16:16], binary.BigEndian.AppendUint32(nil, uint32(len(addr)))...)
		_, err := server.Write(append(out, addr...))
		return err
	}
}

// portOf returns the port of host:port: ZooKeeper's server lines give
// one host for both peer ports.
func portOf(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return port
}

func (s *Server) configPath() string { return filepath.Join(s.Dir, "zoo.cfg") }

// Addr returns the node's client address, "127.0.0.1:port".
func (s *Server) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.ClientPort) }

// SecureAddr returns the node's TLS client address, "127.0.0.1:port", or
// "" when it serves no TLS.
func (s *Server) SecureAddr() string {
	if s.SecurePort == 0 {
		return ""
	}
	return fmt.Sprintf("127.0.0.1:%d", s.SecurePort)
}

// LogPath is the file that receives the node's output.
func (s *Server) LogPath() string { return filepath.Join(s.Dir, "server.log") }

// Start starts the node's process (again, after Stop or Kill) with the same
// ports and data. It does not wait for the node to serve; see WaitServing.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return fmt.Errorf("zkserver: node %d is already running", s.ID)
	}
	logf, err := os.OpenFile(s.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cp := []string{s.opts.Jar, s.opts.SLF4JJar}
	if s.opts.tls() {
		cp = append(cp, NettyJars...)
	}
	args := []string{
		fmt.Sprintf("-Xmx%dm", s.opts.HeapMB),
		"-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xshare:auto",
		"-Dzookeeper.jmx.log4j.disable=true",
		"-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
	}
	if s.opts.JuteMaxBuffer > 0 {
		args = append(args, fmt.Sprintf("-Djute.maxbuffer=%d", s.opts.JuteMaxBuffer))
	}
	cmd := exec.Command("java", append(args, "-cp", strings.Join(cp, ":"), mainClass, s.configPath())...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Own process group, and die with the parent, so an interrupted test run
	// leaves no server behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("zkserver: starting node %d: %w", s.ID, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}()
	s.cmd, s.done = cmd, done
	return nil
}

// Exited is closed when the node's process, as last started, has exited
// (nil when it is not running).
func (s *Server) Exited() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done
}

// Running reports whether the node's process is running (it may be paused).
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}

// PID returns the node's process id, or 0.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

func (s *Server) signalAndWait(sig syscall.Signal, wait time.Duration) error {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = syscall.Kill(cmd.Process.Pid, syscall.SIGCONT) // a paused JVM cannot handle SIGTERM
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(wait):
		_ = cmd.Process.Kill()
		<-done
	}
	s.mu.Lock()
	s.cmd, s.done = nil, nil
	s.mu.Unlock()
	return nil
}

// Stop stops the node gracefully (SIGTERM, then SIGKILL after 10s).
func (s *Server) Stop() error { return s.signalAndWait(syscall.SIGTERM, 10*time.Second) }

// Kill kills the node with SIGKILL.
func (s *Server) Kill() error { return s.signalAndWait(syscall.SIGKILL, 10*time.Second) }

// Restart stops the node and starts it again, waiting until it serves.
func (s *Server) Restart(timeout time.Duration) error {
	if err := s.Stop(); err != nil {
		return err
	}
	if err := s.Start(); err != nil {
		return err
	}
	return s.WaitServing(timeout)
}

// Pause stops the node's process with SIGSTOP; Resume continues it.
// It returns once every thread of the node is stopped: SIGSTOP reaches the
// threads of a process one by one, and a thread still running could answer
// a request after kill returns.
func (s *Server) Pause() error {
	if err := s.signal(syscall.SIGSTOP); err != nil {
		return err
	}
	deadline := time.Now().Add(5 * time.Second)
	for !allStopped(s.PID()) {
		if time.Now().After(deadline) {
			return fmt.Errorf("zkserver: node %d not stopped 5s after SIGSTOP", s.ID)
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

// allStopped reports whether every thread of pid is in the stopped state
// (T in /proc/PID/task/TID/stat).
func allStopped(pid int) bool {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return false
	}
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, t.Name()))
		if err != nil {
			continue // the thread ended
		}
		// The state follows the command name, which is in parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || i+2 >= len(b) || (b[i+2] != 'T' && b[i+2] != 't') {
			return false
		}
	}
	return true
}

// Resume continues a paused node with SIGCONT.
func (s *Server) Resume() error { return s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) error {
	pid := s.PID()
	if pid == 0 {
		return fmt.Errorf("zkserver: node %d is not running", s.ID)
	}
	return syscall.Kill(pid, sig)
}

// FourLetter sends a four-letter command and returns the answer, bounded by
// timeout (a probe of a sick server must never hang the caller).
func (s *Server) FourLetter(cmd string, timeout time.Duration) (string, error) {
	return FourLetter(s.Addr(), cmd, timeout)
}

// FourLetter sends a four-letter command to addr, bounded by timeout.
func FourLetter(addr, cmd string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	dl, _ := ctx.Deadline()
	_ = conn.SetDeadline(dl)
	if _, err := conn.Write([]byte(cmd)); err != nil {
		return "", err
	}
	var b strings.Builder
	sc := bufio.NewScanner(conn)
	for sc.Scan() {
		b.WriteString(sc.Text())
		b.WriteByte('\n')
	}
	if err := sc.Err(); err != nil && b.Len() == 0 {
		return "", err
	}
	return b.String(), nil
}

// Mode returns the node's mode ("standalone", "leader", "follower"), or an
// error when it does not serve.
func (s *Server) Mode() (string, error) {
	out, err := s.FourLetter("srvr", 2*time.Second)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(out, "\n") {
		if m, ok := strings.CutPrefix(line, "Mode: "); ok {
			return strings.TrimSpace(m), nil
		}
	}
	return "", fmt.Errorf("zkserver: node %d does not serve yet: %q", s.ID, strings.TrimSpace(out))
}

// WaitServing waits until the node answers srvr with a Mode line (ruok
// answers before the server serves, so it is not used).
func (s *Server) WaitServing(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if !s.Running() {
			return fmt.Errorf("zkserver: node %d is not running (see %s)", s.ID, s.LogPath())
		}
		if _, err := s.Mode(); err == nil {
			return nil
		} else {
			last = err
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("zkserver: node %d did not serve within %s: %v (see %s)", s.ID, timeout, last, s.LogPath())
}

// WaitReady waits until every running node serves.
func (c *Cluster) WaitReady(timeout time.Duration) error {
	for _, s := range c.Servers {
		if !s.Running() {
			continue
		}
		if err := s.WaitServing(timeout); err != nil {
			return err
		}
	}
	return nil
}

// Addrs returns the client addresses of every node.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Servers))
	for i, s := range c.Servers {
		out[i] = s.Addr()
	}
	return out
}

// ConnectString returns the addresses joined by commas.
func (c *Cluster) ConnectString() string { return strings.Join(c.Addrs(), ",") }

// SecureAddrs returns the TLS client addresses of every node (empty
// strings when the cluster serves no TLS).
func (c *Cluster) SecureAddrs() []string {
	out := make([]string, len(c.Servers))
	for i, s := range c.Servers {
		out[i] = s.SecureAddr()
	}
	return out
}

// SecureConnectString returns the TLS addresses joined by commas.
func (c *Cluster) SecureConnectString() string { return strings.Join(c.SecureAddrs(), ",") }

// Leader returns the node that is leader (or the standalone node).
func (c *Cluster) Leader() (*Server, error) {
	for _, s := range c.Servers {
		if m, err := s.Mode(); err == nil && (m == "leader" || m == "standalone") {
			return s, nil
		}
	}
	return nil, errors.New("zkserver: no node is leader")
}

// StopAll stops every node.
func (c *Cluster) StopAll() {
	var wg sync.WaitGroup
	for _, s := range c.Servers {
		wg.Add(1)
		go func(s *Server) { defer wg.Done(); _ = s.Stop() }(s)
	}
	wg.Wait()
}

// RestartAll stops every node, starts them again and waits until they serve.
func (c *Cluster) RestartAll(timeout time.Duration) error {
	c.StopAll()
	for _, s := range c.Servers {
		if err := s.Start(); err != nil {
			return err
		}
	}
	return c.WaitReady(timeout)
}

// Close kills every node and removes the data directory if Start made it.
func (c *Cluster) Close() {
	for _, s := range c.Servers {
		_ = s.Kill()
	}
	if c.ownDir {
		_ = os.RemoveAll(c.opts.Dir)
	}
}

// FreePorts returns n distinct free TCP ports on 127.0.0.1.
func FreePorts(n int) ([]int, error) {
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
