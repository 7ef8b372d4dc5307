package faultproxy

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// echoServer echoes every connection until the test ends.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	return ln.Addr().String()
}

// sinkServer reads each connection to its end and sends the number of bytes
// it got on the returned channel.
func sinkServer(t *testing.T) (string, <-chan int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got := make(chan int, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				n, _ := io.Copy(io.Discard, c)
				got <- int(n)
			}()
		}
	}()
	return ln.Addr().String(), got
}

// packets returns MySQL-framed packets with the given payload sizes.
func packets(sizes ...int) []byte {
	var b []byte
	for i, n := range sizes {
		b = append(b, byte(n), byte(n>>8), byte(n>>16), byte(i))
		b = append(b, bytes.Repeat([]byte{'x'}, n)...)
	}
	return b
}

func TestForwardsWithoutFaults(t *testing.T) {
	p, err := Start(Options{Target: echoServer(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	go c.Write(bytes.Repeat([]byte{'x'}, 1<<20))
	if got, _ := io.CopyN(io.Discard, c, 1<<20); got != 1<<20 {
		t.Fatalf("echoed %d bytes, want %d", got, 1<<20)
	}
	if len(p.Cuts()) != 0 {
		t.Fatalf("cuts = %v, want none", p.Cuts())
	}
}

// send writes data through the proxy on a new connection and returns
// what the sink got and whether the client saw its connection end.
func send(t *testing.T, addr string, got <-chan int, data []byte) (sunk int, ended bool) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write(data)
	var one [1]byte
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	_, rerr := c.Read(one[:])
	ended = rerr != nil && !isTimeout(rerr)
	if !ended {
		c.Close() // let the sink see the end
	}
	select {
	case sunk = <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("the server never saw the connection end")
	}
	return sunk, ended
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

func TestCutClientToServer(t *testing.T) {
	addr, got := sinkServer(t)
	p, err := Start(Options{Target: addr, MaxCuts: 3, CutMin: 100, CutMax: 1000, Directions: ClientToServer, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	data := packets(500, 500, 500, 500)
	var sunk []int
	for i := 0; i < 5; i++ {
		n, ended := send(t, p.Addr(), got, data)
		if ended != (i < 3) {
			t.Errorf("connection %d: ended = %v, want %v (3 cuts, then none)", i+1, ended, i < 3)
		}
		sunk = append(sunk, n)
	}
	cuts := p.Cuts()
	if len(cuts) != 3 {
		t.Fatalf("cuts = %v, want 3", cuts)
	}
	for i, c := range cuts {
		if c.Direction != ClientToServer || c.After < 100 || c.After > 1000 || int(c.After) != sunk[i] {
			t.Errorf("cut %+v: the server got %d bytes; want a client->server cut after [100, 1000] bytes, all of them delivered", c, sunk[i])
		}
	}
	if sunk[3] != len(data) || sunk[4] != len(data) {
		t.Errorf("after the cuts the server got %v bytes, want %d", sunk[3:], len(data))
	}
}

func TestCutServerToClient(t *testing.T) {
	addr, got := sinkServer(t)
	// Packets end at 504, 1008, 1512, 2016: a budget in [600, 1000] is
	// used up inside the second packet, which the server must get whole.
	p, err := Start(Options{Target: addr, MaxCuts: 2, CutMin: 600, CutMax: 1000, Directions: ServerToClient, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	data := packets(500, 500, 500, 500)
	for i := 0; i < 3; i++ {
		n, ended := send(t, p.Addr(), got, data)
		want := 1008
		if i == 2 {
			want = len(data) // no cut left
		}
		if n != want || ended != (i < 2) {
			t.Errorf("connection %d: the server got %d bytes and the client's end came = %v; want %d and %v", i+1, n, ended, want, i < 2)
		}
	}
	for _, c := range p.Cuts() {
		if c.Direction != ServerToClient || c.After < 600 || c.After > 1000 {
			t.Errorf("cut %+v: want a server->client cut after [600, 1000] bytes", c)
		}
	}
}

func TestFramer(t *testing.T) {
	sizes := []int{0, 1, 250, 3, 70000, 0, 17}
	data := packets(sizes...)
	var ends []int // offsets just past each packet
	off := 0
	for _, n := range sizes {
		off += 4 + n
		ends = append(ends, off)
	}
	r := rand.New(rand.NewPCG(1, 1))
	for trial := 0; trial < 100; trial++ {
		var f framer
		var gotEnds []int
		pos := 0
		for pos < len(data) {
			k := 1 + r.IntN(min(len(data)-pos, 5000))
			chunk := data[pos : pos+k]
			for len(chunk) > 0 {
				n, ended := f.next(chunk)
				chunk = chunk[n:]
				pos += n
				if ended {
					gotEnds = append(gotEnds, pos)
				}
			}
		}
		if !slicesEqual(gotEnds, ends) {
			t.Fatalf("trial %d: packet ends %v, want %v", trial, gotEnds, ends)
		}
	}
}

func slicesEqual(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestMarker(t *testing.T) {
	var calls atomic.Int64
	marker := []byte("QUERY-OF-DEATH")
	p, err := Start(Options{Target: echoServer(t), Marker: marker, OnMarker: func() { calls.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	// The marker is split over two writes: it must still be seen, and the
	// write that completes it must not come back.
	c.Write([]byte("hello QUERY-OF"))
	buf := make([]byte, 14)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("first part: %v", err)
	}
	time.Sleep(50 * time.Millisecond)
	c.Write([]byte("-DEATH and more"))
	if n, err := c.Read(buf); err == nil {
		t.Fatalf("read %q after the marker, want the connection reset", buf[:n])
	}
	if calls.Load() != 1 || p.Markers() != 1 {
		t.Fatalf("OnMarker called %d times, Markers() = %d, want 1", calls.Load(), p.Markers())
	}
}

// TestFreeze: while frozen nothing comes back on an open connection and a
// new connection gets nothing from the server; neither is closed; after
// Thaw both get what was held.
func TestFreeze(t *testing.T) {
	p, err := Start(Options{Target: echoServer(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	open := func() net.Conn {
		c, err := net.Dial("tcp", p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	echo := func(c net.Conn, msg string, wait time.Duration) (string, error) {
		c.SetDeadline(time.Now().Add(wait))
		if _, err := c.Write([]byte(msg)); err != nil {
			return "", err
		}
		buf := make([]byte, len(msg))
		_, err := io.ReadFull(c, buf)
		return string(buf), err
	}
	before := open()
	if got, err := echo(before, "one", 5*time.Second); got != "one" || err != nil {
		t.Fatalf("before Freeze: echoed %q, %v", got, err)
	}
	p.Freeze()
	if got, err := echo(before, "two", 300*time.Millisecond); !isTimeout(err) {
		t.Fatalf("frozen, open connection: echoed %q, %v; want a timeout", got, err)
	}
	during := open() // accepted, but not dialed through
	if got, err := echo(during, "three", 300*time.Millisecond); !isTimeout(err) {
		t.Fatalf("frozen, new connection: echoed %q, %v; want a timeout", got, err)
	}
	p.Thaw()
	for _, c := range []struct {
		conn net.Conn
		want string
	}{{before, "two"}, {during, "three"}} {
		c.conn.SetDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, len(c.want))
		if _, err := io.ReadFull(c.conn, buf); err != nil || string(buf) != c.want {
			t.Fatalf("after Thaw: got %q, %v; want %q", buf, err, c.want)
		}
	}
}
