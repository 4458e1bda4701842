// The Go reference for the fdpass benchmarks: net.UnixConn.WriteMsgUnix and
// ReadMsgUnix with syscall.UnixRights, written the way Go programs pass fds
// (standard library only; the runtime's netpoller does the waiting).
//
//	unixrights roundtrip <iterations> <fds> <bytes>   send, receive, close, in-process
//	unixrights pingpong <iterations>                  a re-executed child echoes the fd back
//	unixrights concurrent <pairs> <rounds>            goroutine pairs ping-ponging at once
//	unixrights echo                                   (the child: socket on fd 3)
//
// roundtrip and pingpong print "<ns per operation> <operations>"; concurrent
// prints JSON like bench/peers/concurrent_child.ts.
package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	must(err)
	return n
}

// pair returns a connected stream socketpair as two UnixConns.
func pair() (*net.UnixConn, *net.UnixConn) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	must(err)
	return fileConn(os.NewFile(uintptr(fds[0]), "a")), fileConn(os.NewFile(uintptr(fds[1]), "b"))
}

// fileConn wraps a socket file; net.FileConn dups it, so the file is closed.
func fileConn(f *os.File) *net.UnixConn {
	c, err := net.FileConn(f)
	must(err)
	f.Close()
	return c.(*net.UnixConn)
}

// sendAll writes data with the fds attached to the first chunk.
func sendAll(c *net.UnixConn, data []byte, rights []byte) error {
	n, _, err := c.WriteMsgUnix(data, rights, nil)
	if err != nil {
		return err
	}
	if n < len(data) {
		_, err = c.Write(data[n:])
	}
	return err
}

// recvAll reads `len(buf)` bytes and closes every fd that comes with them.
func recvAll(c *net.UnixConn, buf []byte, oob []byte) (int, error) {
	got, fds := 0, 0
	for got < len(buf) {
		n, oobn, _, _, err := c.ReadMsgUnix(buf[got:], oob)
		if err != nil {
			return fds, err
		}
		if n == 0 {
			return fds, fmt.Errorf("unexpected end of stream")
		}
		got += n
		if oobn > 0 {
			msgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
			if err != nil {
				return fds, err
			}
			for _, m := range msgs {
				received, err := syscall.ParseUnixRights(&m)
				if err != nil {
					return fds, err
				}
				for _, fd := range received {
					syscall.Close(fd)
				}
				fds += len(received)
			}
		}
	}
	return fds, nil
}

func devNull() int {
	fd, err := syscall.Open("/dev/null", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	must(err)
	return fd
}

func roundtrip(iterations, nfds, bytes int) {
	a, b := pair()
	fd := devNull()
	fds := make([]int, nfds)
	for i := range fds {
		fds[i] = fd
	}
	rights := syscall.UnixRights(fds...)
	out, in := make([]byte, bytes), make([]byte, bytes)
	oob := make([]byte, syscall.CmsgSpace(4*253))
	var start time.Time
	for i := -(iterations/10 + 1); i < iterations; i++ {
		if i == 0 {
			start = time.Now()
		}
		must(sendAll(a, out, rights))
		got, err := recvAll(b, in, oob)
		must(err)
		if got != nfds {
			must(fmt.Errorf("received %d fds, want %d", got, nfds))
		}
	}
	elapsed := time.Since(start)
	fmt.Printf("%.1f %d\n", float64(elapsed.Nanoseconds())/float64(iterations), iterations)
}

func pingpong(iterations int) {
	a, b := pair()
	bFile, err := b.File() // a dup without close-on-exec for the child's fd 3
	must(err)
	cmd := exec.Command(os.Args[0], "echo")
	cmd.ExtraFiles = []*os.File{bFile}
	cmd.Stderr = os.Stderr
	must(cmd.Start())
	bFile.Close()
	b.Close()
	rights := syscall.UnixRights(devNull())
	buf := []byte{'x'}
	oob := make([]byte, syscall.CmsgSpace(4*253))
	var start time.Time
	for i := -(iterations/10 + 1); i < iterations; i++ {
		if i == 0 {
			start = time.Now()
		}
		must(sendAll(a, buf, rights))
		got, err := recvAll(a, buf, oob)
		must(err)
		if got != 1 {
			must(fmt.Errorf("the echo child lost the fd"))
		}
	}
	elapsed := time.Since(start)
	a.Close()
	must(cmd.Wait())
	fmt.Printf("%.1f %d\n", float64(elapsed.Nanoseconds())/float64(iterations), iterations)
}

func echo() {
	c := fileConn(os.NewFile(3, "socket"))
	buf := []byte{0}
	oob := make([]byte, syscall.CmsgSpace(4*253))
	for {
		n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
		if err != nil || n == 0 {
			return
		}
		msgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
		must(err)
		if len(msgs) != 1 {
			os.Exit(1)
		}
		fds, err := syscall.ParseUnixRights(&msgs[0])
		must(err)
		must(sendAll(c, buf, syscall.UnixRights(fds...)))
		for _, fd := range fds {
			syscall.Close(fd)
		}
	}
}

func cpuSeconds(tv syscall.Timeval) float64 {
	return float64(tv.Sec) + float64(tv.Usec)/1e6
}

func concurrent(pairs, rounds int) {
	fd := devNull()
	rights := syscall.UnixRights(fd)
	conns := make([][2]*net.UnixConn, pairs)
	for i := range conns {
		a, b := pair()
		conns[i] = [2]*net.UnixConn{a, b}
	}
	var before, after syscall.Rusage
	must(syscall.Getrusage(syscall.RUSAGE_SELF, &before))
	start := time.Now()
	var wg sync.WaitGroup
	for _, c := range conns {
		a, b := c[0], c[1]
		wg.Add(2)
		go func() { // side B: receive 1 byte + 1 fd, close it, answer 1 byte
			defer wg.Done()
			buf, oob := []byte{0}, make([]byte, syscall.CmsgSpace(4))
			for i := 0; i < rounds; i++ {
				_, err := recvAll(b, buf, oob)
				must(err)
				must(sendAll(b, buf, nil))
			}
		}()
		go func() { // side A: send 1 byte + 1 fd, wait for the answer
			defer wg.Done()
			buf, oob := []byte{1}, make([]byte, syscall.CmsgSpace(4))
			for i := 0; i < rounds; i++ {
				must(sendAll(a, buf, rights))
				_, err := recvAll(a, buf, oob)
				must(err)
			}
		}()
	}
	wg.Wait()
	seconds := time.Since(start).Seconds()
	must(syscall.Getrusage(syscall.RUSAGE_SELF, &after))
	messages := pairs * rounds * 2
	must(json.NewEncoder(os.Stdout).Encode(map[string]any{
		"pairs":             pairs,
		"rounds":            rounds,
		"messages":          messages,
		"seconds":           seconds,
		"messagesPerSecond": float64(messages) / seconds,
		"cpuUserSeconds":    cpuSeconds(after.Utime) - cpuSeconds(before.Utime),
		"cpuSystemSeconds":  cpuSeconds(after.Stime) - cpuSeconds(before.Stime),
	}))
}

func main() {
	args := os.Args[1:]
	switch {
	case len(args) == 4 && args[0] == "roundtrip":
		roundtrip(atoi(args[1]), atoi(args[2]), atoi(args[3]))
	case len(args) == 2 && args[0] == "pingpong":
		pingpong(atoi(args[1]))
	case len(args) == 3 && args[0] == "concurrent":
		concurrent(atoi(args[1]), atoi(args[2]))
	case len(args) == 1 && args[0] == "echo":
		echo()
	default:
		fmt.Fprintln(os.Stderr, "usage: unixrights roundtrip <iterations> <fds> <bytes> | pingpong <iterations> | concurrent <pairs> <rounds>")
		os.Exit(2)
	}
}
