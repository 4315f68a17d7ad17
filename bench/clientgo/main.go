// Command clientgo-informer-bench is the client-go side of bench/informer_sync.py: one shared
// informer factory pod informer (all namespaces) with one no-op event handler, measured the way
// the Python children measure informerd, so the two can be read side by side.
//
// It prints one JSON line when the informer and the handler have synced (times, heap and RSS after
// a GC), then waits until the handler has seen -updates pod updates whose "bench-tick" label starts
// with -token (the parent script issues them) and prints a second JSON line with their timing and
// the CPU they cost. Everything else (klog) goes to stderr. Invariant: stdout carries exactly those
// two lines, in that order, or the process exits non-zero. bench/peers reads the same two lines,
// plus the events line's "latencies_ms": write -> handler, the write time taken from the pod's
// "bench.informerd.io/written" annotation (unix seconds) when the parent sets it.
//
// Wire format: client-go's typed clients for built-in types prefer protobuf (generated with
// gentype.PrefersProtobuf; rest.Request.UseProtobufAsDefault applies when the config sets neither
// ContentType nor AcceptContentTypes), so by default this peer talks protobuf for pods. -json
// forces JSON, which is what client-go does for custom resources (CRDs have no protobuf). The
// synced line says which was asked for ("wire") and which media types the server's responses to
// pod requests carried ("content_types").
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"informerd.local/bench/gopeer"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	clientfeatures "k8s.io/client-go/features"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

// stripManagedFields drops metadata.managedFields before the object reaches the cache, as
// informerd does by default; it keeps the comparison like for like.
func stripManagedFields(obj interface{}) (interface{}, error) {
	if accessor, err := meta.Accessor(obj); err == nil && accessor.GetManagedFields() != nil {
		accessor.SetManagedFields(nil)
	}
	return obj, nil
}

func main() {
	kubeconfig := flag.String("kubeconfig", "", "admin kubeconfig of the cluster")
	qps := flag.Float64("qps", 5, "client QPS (client-go default 5)")
	burst := flag.Int("burst", 10, "client burst (client-go default 10)")
	strip := flag.Bool("strip-managed-fields", false, "transform: drop managedFields before caching")
	jsonWire := flag.Bool("json", false, "talk JSON instead of client-go's default for pods, protobuf")
	updates := flag.Int("updates", 0, "pod updates to wait for after sync")
	token := flag.String("token", "", "bench-tick label prefix of the updates to count")
	timeout := flag.Duration("timeout", 300*time.Second, "give up on sync or updates after this long")
	flag.Parse()

	runtime.GC()
	config, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kubeconfig:", err)
		os.Exit(1)
	}
	config.QPS, config.Burst = float32(*qps), *burst
	wire := "protobuf" // the typed pod client's preference when the config names no content type
	if *jsonWire {
		config.ContentType = "application/json"
		config.AcceptContentTypes = "application/json"
		wire = "json"
	}
	seenTypes := gopeer.NewContentTypes()
	config.Wrap(seenTypes.Wrap)
	clientset, err := kubernetes.NewForConfig(config)
	if err != nil {
		fmt.Fprintln(os.Stderr, "clientset:", err)
		os.Exit(1)
	}
	runtime.GC()
	debug.FreeOSMemory()
	rss0 := gopeer.ProcStatusKB("VmRSS")

	var options []informers.SharedInformerOption
	if *strip {
		options = append(options, informers.WithTransform(stripManagedFields))
	}
	factory := informers.NewSharedInformerFactoryWithOptions(clientset, 0, options...)
	informer := factory.Core().V1().Pods().Informer()

	var seen atomic.Int64
	var latencies []float64 // appended by the handler only (client-go calls one handler serially)
	var firstNs, lastNs atomic.Int64
	var adds atomic.Int64
	done := make(chan struct{})
	want := int64(*updates)
	registration, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj interface{}) { adds.Add(1) },
		UpdateFunc: func(oldObj, newObj interface{}) {
			pod, ok := newObj.(*corev1.Pod)
			if !ok || *token == "" || !strings.HasPrefix(pod.Labels["bench-tick"], *token) {
				return
			}
			now := time.Now().UnixNano()
			if written, err := strconv.ParseFloat(pod.Annotations["bench.informerd.io/written"], 64); err == nil && written > 0 {
				latencies = append(latencies, (float64(now)/1e9-written)*1000)
			}
			firstNs.CompareAndSwap(0, now)
			lastNs.Store(now)
			if seen.Add(1) == want {
				close(done)
			}
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "handler:", err)
		os.Exit(1)
	}

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	started := time.Now()
	cpuStart := gopeer.CPUSeconds()
	factory.Start(ctx.Done())
	// Poll every millisecond: cache.WaitForCacheSync polls every 100 ms, too coarse to time with.
	for !informer.HasSynced() {
		if ctx.Err() != nil {
			fmt.Fprintln(os.Stderr, "informer did not sync before the timeout")
			os.Exit(1)
		}
		time.Sleep(time.Millisecond)
	}
	syncS := time.Since(started).Seconds()
	for !registration.HasSynced() {
		if ctx.Err() != nil {
			fmt.Fprintln(os.Stderr, "handler did not sync before the timeout")
			os.Exit(1)
		}
		time.Sleep(time.Millisecond)
	}
	handlerSyncS := time.Since(started).Seconds()
	cpuSync := gopeer.CPUSeconds() - cpuStart

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rssAfterGC := gopeer.ProcStatusKB("VmRSS")
	hwm := gopeer.ProcStatusKB("VmHWM")
	debug.FreeOSMemory()
	rssAfterFree := gopeer.ProcStatusKB("VmRSS")
	objects := len(informer.GetStore().ListKeys())
	cpu0 := gopeer.CPUSeconds()
	gopeer.Emit(map[string]interface{}{
		"phase":             "synced",
		"sync_s":            syncS,
		"handler_sync_s":    handlerSyncS,
		"objects":           objects,
		"adds":              adds.Load(),
		"rss_base_kb":       rss0,
		"rss_kb":            rssAfterGC,
		"rss_after_free_kb": rssAfterFree,
		"peak_rss_kb":       hwm,
		"heap_alloc_bytes":  ms.HeapAlloc,
		"heap_inuse_bytes":  ms.HeapInuse,
		"watch_list":        clientfeatures.FeatureGates().Enabled(clientfeatures.WatchListClient),
		"wire":              wire,
		"content_types":     seenTypes.List(),
		"cpu_s":             cpu0,
		"cpu_sync_s":        cpuSync,
		"gomaxprocs":        runtime.GOMAXPROCS(0),
		"go_version":        runtime.Version(),
	})

	if want > 0 {
		select {
		case <-done:
		case <-ctx.Done():
		}
	}
	first, last := float64(firstNs.Load())/1e9, float64(lastNs.Load())/1e9
	if latencies == nil {
		latencies = []float64{}
	}
	gopeer.Emit(map[string]interface{}{
		"phase":         "events",
		"events":        seen.Load(),
		"first_event_t": first,
		"last_event_t":  last,
		"cpu_s":         gopeer.CPUSeconds() - cpu0,
		"timed_out":     seen.Load() < want,
		"now_t":         gopeer.UnixNow(),
		"latencies_ms":  latencies,
		"peak_rss_kb":   gopeer.ProcStatusKB("VmHWM"),
	})
}
