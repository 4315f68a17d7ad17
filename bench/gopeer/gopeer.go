// Package gopeer holds what both Go peers of bench/peers (bench/clientgo, bench/controllerruntime)
// measure and print the same way: process RSS and CPU, the wall clock, the JSON lines of the peer
// protocol (bench/peers/child.py), and the media types the server answered pod requests with.
// Standard library only, so it adds no dependency to either peer's go.mod.
package gopeer

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ProcStatusKB reads one "Vm..." line of /proc/self/status, in KiB (-1 if absent).
func ProcStatusKB(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		line := scanner.Text()
		if strings.HasPrefix(line, field+":") {
			parts := strings.Fields(line[len(field)+1:])
			if len(parts) > 0 {
				v, _ := strconv.ParseInt(parts[0], 10, 64)
				return v
			}
		}
	}
	return -1
}

// CPUSeconds is the process's user + system CPU time so far.
func CPUSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

// UnixNow is the wall clock in unix seconds (the clock the driver's write times use).
func UnixNow() float64 { return float64(time.Now().UnixNano()) / 1e9 }

// Emit writes one protocol line (a JSON object) on stdout; a value that cannot be encoded ends the
// process, since a peer whose line is missing would only time out in the driver.
func Emit(v map[string]any) {
	data, err := json.Marshal(v)
	if err != nil {
		fmt.Fprintln(os.Stderr, "json:", err)
		os.Exit(2)
	}
	os.Stdout.Write(append(data, '\n'))
}

// ContentTypes records the media type of every response to a pod request (list, watch), so the
// synced line shows what the server sent, not only what was asked for. Install it with
// rest.Config.Wrap(c.Wrap).
type ContentTypes struct {
	mu   sync.Mutex
	seen map[string]struct{}
}

// NewContentTypes makes an empty recorder.
func NewContentTypes() *ContentTypes { return &ContentTypes{seen: map[string]struct{}{}} }

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// Wrap is a rest.Config wrap function: the transport, recording pod responses' Content-Type.
func (c *ContentTypes) Wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		resp, err := rt.RoundTrip(req)
		if err == nil && strings.HasSuffix(req.URL.Path, "/pods") {
			c.mu.Lock()
			c.seen[resp.Header.Get("Content-Type")] = struct{}{}
			c.mu.Unlock()
		}
		return resp, err
	})
}

// List is the media types seen so far, sorted.
func (c *ContentTypes) List() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.seen))
	for t := range c.seen {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}
