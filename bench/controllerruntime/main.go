// Command controllerruntime-bench is the Go side of bench/peers for the controller path: a
// controller-runtime manager with one pod controller whose reconciler does nothing but read the pod
// from the cache (what every real reconciler does first) and note when it started. With
// -mode workqueue it instead times client-go's work queue (add/get/done cycles), the Go twin of
// informerd's controllers.workqueue.
//
// Protocol (the same as every peer child, see bench/peers/child.py): JSON lines on stdout, in this
// order: "synced" (caches synced; times, CPU, RSS), "initial" (every one of -expect pods reconciled
// once), "events" (every pod patched with -token reconciled; latencies write -> reconcile start).
// Everything else (logs) goes to stderr. Invariant: stdout carries exactly those lines, or the
// process exits non-zero.
//
// Wire format: controller-runtime's cache builds its REST client per type with
// apiutil.RESTClientForGVK (pkg/client/apiutil/apimachinery.go, v0.25.3), which sets
// ContentType protobuf for every type in client-go's scheme (built-in types, Pods included) when
// the config names none; CRDs and unstructured objects get JSON. So by default this peer talks
// protobuf for pods; -json forces JSON, which is what it does for custom resources. The synced line
// says which was asked for ("wire") and which media types the server's responses to pod requests
// carried ("content_types").
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
	"sync"
	"time"

	"informerd.local/bench/gopeer"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/log"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

const (
	tickLabel         = "bench-tick"
	writtenAnnotation = "bench.informerd.io/written"
)

func fail(what string, err error) {
	fmt.Fprintln(os.Stderr, what+":", err)
	os.Exit(1)
}

// tracker records reconciles: distinct keys seen at all (the initial pass) and distinct keys whose
// pod carries the run's token (the update pass), with write -> reconcile start latencies.
type tracker struct {
	mu           sync.Mutex
	token        string
	expect, want int
	seen         map[types.NamespacedName]struct{}
	ticked       map[types.NamespacedName]struct{}
	latencies    []float64
	first, last  float64
	initial      chan struct{}
	done         chan struct{}
	reconciles   int64
}

func (t *tracker) note(key types.NamespacedName, pod *corev1.Pod, started float64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.reconciles++
	if _, ok := t.seen[key]; !ok {
		t.seen[key] = struct{}{}
		if len(t.seen) == t.expect {
			close(t.initial)
		}
	}
	if pod == nil || t.token == "" || !strings.HasPrefix(pod.Labels[tickLabel], t.token) {
		return
	}
	if _, ok := t.ticked[key]; ok {
		return
	}
	t.ticked[key] = struct{}{}
	if written, err := strconv.ParseFloat(pod.Annotations[writtenAnnotation], 64); err == nil && written > 0 {
		t.latencies = append(t.latencies, (started-written)*1000)
	}
	if t.first == 0 {
		t.first = started
	}
	t.last = gopeer.UnixNow()
	if len(t.ticked) == t.want {
		close(t.done)
	}
}

type noopReconciler struct {
	client  client.Client
	tracker *tracker
}

func (r *noopReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	started := gopeer.UnixNow()
	var pod corev1.Pod
	if err := r.client.Get(ctx, req.NamespacedName, &pod); err != nil {
		r.tracker.note(req.NamespacedName, nil, started)
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	r.tracker.note(req.NamespacedName, &pod, started)
	return reconcile.Result{}, nil
}

func runController() {
	// A flag set of our own: controller-runtime registers "kubeconfig" on the global one.
	fs := flag.NewFlagSet("controller", flag.ExitOnError)
	kubeconfig := fs.String("kubeconfig", "", "admin kubeconfig of the cluster")
	qps := fs.Float64("qps", 5, "client QPS")
	burst := fs.Int("burst", 10, "client burst")
	strip := fs.Bool("strip-managed-fields", false, "cache transform: drop managedFields")
	jsonWire := fs.Bool("json", false, "talk JSON instead of controller-runtime's default for pods, protobuf")
	workers := fs.Int("workers", 1, "MaxConcurrentReconciles")
	expect := fs.Int("expect", 0, "pods in the cluster: the initial pass is done when each was reconciled")
	updates := fs.Int("updates", 0, "patched pods to wait for after the initial pass")
	token := fs.String("token", "", "bench-tick label prefix of the patched pods")
	timeout := fs.Duration("timeout", 300*time.Second, "give up after this long")
	fs.Parse(os.Args[2:])

	klog.SetOutput(os.Stderr)
	log.SetLogger(klog.NewKlogr())
	runtime.GC()
	config, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		fail("kubeconfig", err)
	}
	config.QPS, config.Burst = float32(*qps), *burst
	wire := "protobuf" // apiutil's choice for built-in types when the config names no content type
	if *jsonWire {
		config.ContentType = "application/json"
		config.AcceptContentTypes = "application/json"
		wire = "json"
	}
	seenTypes := gopeer.NewContentTypes()
	config.Wrap(seenTypes.Wrap)
	options := ctrl.Options{
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	}
	if *strip {
		options.Cache = cache.Options{DefaultTransform: cache.TransformStripManagedFields()}
	}
	mgr, err := ctrl.NewManager(config, options)
	if err != nil {
		fail("manager", err)
	}
	t := &tracker{
		token: *token, expect: *expect, want: *updates,
		seen: map[types.NamespacedName]struct{}{}, ticked: map[types.NamespacedName]struct{}{},
		initial: make(chan struct{}), done: make(chan struct{}),
	}
	if *expect <= 0 {
		close(t.initial)
	}
	if *updates <= 0 {
		close(t.done)
	}
	err = ctrl.NewControllerManagedBy(mgr).
		For(&corev1.Pod{}).
		Named("bench-pods").
		WithOptions(controller.Options{MaxConcurrentReconciles: *workers}).
		Complete(&noopReconciler{client: mgr.GetClient(), tracker: t})
	if err != nil {
		fail("controller", err)
	}
	runtime.GC()
	debug.FreeOSMemory()
	rss0 := gopeer.ProcStatusKB("VmRSS")
	cpuStart := gopeer.CPUSeconds()

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	started := time.Now()
	go func() {
		if err := mgr.Start(ctx); err != nil && ctx.Err() == nil {
			fail("manager start", err)
		}
	}()
	// The pod informer is the one the controller watches with (one per type in the cache). Poll
	// HasSynced every millisecond: WaitForCacheSync polls every 100 ms, too coarse to time with.
	informer, err := mgr.GetCache().GetInformer(ctx, &corev1.Pod{}, cache.BlockUntilSynced(false))
	if err != nil {
		fail("informer", err)
	}
	for !informer.HasSynced() {
		if ctx.Err() != nil {
			fail("sync", fmt.Errorf("caches not synced before the timeout"))
		}
		time.Sleep(time.Millisecond)
	}
	syncS := time.Since(started).Seconds()
	cpuSync := gopeer.CPUSeconds() - cpuStart
	runtime.GC()
	rssAfterGC := gopeer.ProcStatusKB("VmRSS")
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	var pods corev1.PodList
	objects := -1
	if err := mgr.GetCache().List(ctx, &pods); err == nil {
		objects = len(pods.Items)
	}
	gopeer.Emit(map[string]any{
		"phase": "synced", "sync_s": syncS, "cpu_sync_s": cpuSync, "objects": objects,
		"rss_base_kb": rss0, "rss_kb": rssAfterGC, "peak_rss_kb": gopeer.ProcStatusKB("VmHWM"),
		"heap_alloc_bytes": ms.HeapAlloc, "workers": *workers, "go_version": runtime.Version(),
		"wire": wire, "content_types": seenTypes.List(),
	})

	select {
	case <-t.initial:
	case <-ctx.Done():
	}
	t.mu.Lock()
	initialSeen, reconciles := len(t.seen), t.reconciles
	t.mu.Unlock()
	gopeer.Emit(map[string]any{
		"phase": "initial", "reconciled": initialSeen, "reconciles": reconciles,
		"seconds": time.Since(started).Seconds(), "cpu_s": gopeer.CPUSeconds() - cpuStart,
		"peak_rss_kb": gopeer.ProcStatusKB("VmHWM"), "timed_out": initialSeen < *expect,
	})
	cpu0 := gopeer.CPUSeconds()
	select {
	case <-t.done:
	case <-ctx.Done():
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	gopeer.Emit(map[string]any{
		"phase": "events", "events": len(t.ticked), "first_event_t": t.first, "last_event_t": t.last,
		"cpu_s": gopeer.CPUSeconds() - cpu0, "latencies_ms": t.latencies, "timed_out": len(t.ticked) < *updates,
		"peak_rss_kb": gopeer.ProcStatusKB("VmHWM"),
	})
	os.Exit(0)
}

// runWorkqueue times client-go's workqueue.Typed the way bench/workqueue_bench.py times
// informerd's: one goroutine looping add -> get -> done, and W consumers draining what the main
// goroutine adds. Every item is a distinct int, so nothing is de-duplicated.
func runWorkqueue() {
	fs := flag.NewFlagSet("workqueue", flag.ExitOnError)
	items := fs.Int("items", 100000, "items per run")
	workers := fs.Int("workers", 4, "consumer goroutines")
	fs.Parse(os.Args[2:])

	one := func() float64 {
		q := workqueue.NewTyped[int]()
		start := time.Now()
		for i := 0; i < *items; i++ {
			q.Add(i)
			item, _ := q.Get()
			q.Done(item)
		}
		q.ShutDown()
		return float64(*items) / time.Since(start).Seconds()
	}
	many := func() float64 {
		q := workqueue.NewTyped[int]()
		var wg sync.WaitGroup
		start := time.Now()
		for w := 0; w < *workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					item, shutdown := q.Get()
					if shutdown {
						return
					}
					q.Done(item)
				}
			}()
		}
		for i := 0; i < *items; i++ {
			q.Add(i)
		}
		q.ShutDownWithDrain()
		wg.Wait()
		return float64(*items) / time.Since(start).Seconds()
	}
	gopeer.Emit(map[string]any{
		"phase": "workqueue", "one_thread": one(), "workers": many(), "worker_count": *workers,
		"items": *items, "gomaxprocs": runtime.GOMAXPROCS(0), "go_version": runtime.Version(),
	})
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: controllerruntime-bench controller|workqueue [flags]")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "controller":
		runController()
	case "workqueue":
		runWorkqueue()
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", os.Args[1])
		os.Exit(2)
	}
}
