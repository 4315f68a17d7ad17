// Command sharding_go prints kube-state-metrics' shard assignment for the UIDs read from stdin
// (one per line), as JSON: FNV-1a 64 of the UID (Go's hash/fnv) and the jump consistent hash of
// that for 1..N shards (Lamping and Veach's algorithm, written as dgryski/go-jump writes it).
// tests/unit/test_sharding.py runs it to check controllers/sharding.py bit for bit, and
// regenerates vectors.json (see regenerate_vectors there): go run tests/unit/sharding_go/main.go < uids
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"hash/fnv"
	"os"
)

func jump(key uint64, buckets int) int32 {
	var b int64 = -1
	var j int64
	for j < int64(buckets) {
		b = j
		key = key*2862933555777941757 + 1
		j = int64(float64(b+1) * (float64(int64(1)<<31) / float64((key>>33)+1)))
	}
	return int32(b)
}

type vector struct {
	UID    string  `json:"uid"`
	FNV    uint64  `json:"fnv1a_64"`
	Shards []int32 `json:"shard_for_total"`
}

func main() {
	max := flag.Int("max", 10, "largest shard count")
	flag.Parse()
	var out []vector
	scanner := bufio.NewScanner(os.Stdin)
	for scanner.Scan() {
		uid := scanner.Text()
		h := fnv.New64a()
		h.Write([]byte(uid))
		key := h.Sum64()
		v := vector{UID: uid, FNV: key}
		for total := 1; total <= *max; total++ {
			v.Shards = append(v.Shards, jump(key, total))
		}
		out = append(out, v)
	}
	enc := json.NewEncoder(os.Stdout)
	if err := enc.Encode(out); err != nil {
		os.Exit(1)
	}
}
