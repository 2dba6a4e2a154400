// gofleet: a gocraft/work worker pool or enqueuer for workq's mixed-fleet tests, built against the gocraft/work
// source in ../gocraft_work (master, or v0.5.1 without the by-key API).
//
//	gofleet pool    -url URL -ns NS -label L -jobs a,b:2 [-fail a] [-concurrency N]
//	gofleet enqueue -url URL -ns NS -name a [-args JSON] [-count N] [-unique] [-key JSON] [-in SECONDS]
//	gofleet next -after EPOCH [-count N] SPEC...
//
// The pool records every run as JSON ({"side", "name", "id", "args"}) on the list <ns>:interop:runs, prints
// "started" once it works, and stops cleanly (gocraft's WorkerPool.Stop) when its standard input closes.
// Handlers of -hold names wait, once recorded, until the key <ns>:interop:release exists.
// The enqueuer prints one line per job: the job's JSON, or "dup" for a unique job refused as a duplicate.
// next prints, a line per SPEC, the epoch seconds of its next -count fire times after -after, as gocraft/work
// master's periodic enqueuer computes them: its parser, in the host's local time zone (TZ).
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gocraft/work"
	"github.com/gomodule/redigo/redis"
	"github.com/robfig/cron/v3"
)

type context struct{}

func main() {
	if len(os.Args) < 2 {
		fail(fmt.Errorf("usage: gofleet pool|enqueue [flags]"))
	}
	flags := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	url := flags.String("url", "redis://127.0.0.1:6379/0", "Redis URL")
	ns := flags.String("ns", "", "namespace")
	label := flags.String("label", "go", "pool: the side recorded with each run")
	jobs := flags.String("jobs", "", "pool: job names to register, each optionally name:max_concurrency")
	failing := flags.String("fail", "", "pool: job names whose handler returns an error")
	holding := flags.String("hold", "", "pool: job names whose handler waits for <ns>:interop:release")
	concurrency := flags.Uint("concurrency", 4, "pool: worker goroutines")
	name := flags.String("name", "", "enqueue: job name")
	argsJSON := flags.String("args", "{}", "enqueue: args as a JSON object")
	count := flags.Int("count", 1, "enqueue: jobs to enqueue; with more than one each gets an arg i = 0, 1, ...")
	unique := flags.Bool("unique", false, "enqueue: EnqueueUnique")
	keyJSON := flags.String("key", "", "enqueue: EnqueueUniqueByKey with this key map (gocraft/work master only)")
	in := flags.Int64("in", 0, "enqueue: seconds from now (EnqueueIn / EnqueueUniqueIn)")
	after := flags.Int64("after", 0, "next: epoch seconds")
	if err := flags.Parse(os.Args[2:]); err != nil {
		fail(err)
	}
	pool := &redis.Pool{
		MaxActive: 20,
		MaxIdle:   20,
		Wait:      true,
		Dial:      func() (redis.Conn, error) { return redis.DialURL(*url) },
	}
	switch os.Args[1] {
	case "pool":
		runPool(pool, *ns, *label, *jobs, names(*failing), names(*holding), *concurrency)
	case "next":
		parser := cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)
		for _, spec := range flags.Args() {
			schedule, err := parser.Parse(spec)
			if err != nil {
				fail(err)
			}
			times := make([]string, 0, *count)
			for t, i := time.Unix(*after, 0), 0; i < *count; i++ {
				t = schedule.Next(t)
				times = append(times, strconv.FormatInt(t.Unix(), 10))
			}
			fmt.Println(strings.Join(times, " "))
		}
	case "enqueue":
		var args map[string]interface{}
		if err := json.Unmarshal([]byte(*argsJSON), &args); err != nil {
			fail(fmt.Errorf("-args: %v", err))
		}
		var keyMap map[string]interface{}
		if *keyJSON != "" {
			if err := json.Unmarshal([]byte(*keyJSON), &keyMap); err != nil {
				fail(fmt.Errorf("-key: %v", err))
			}
		}
		enqueuer := work.NewEnqueuer(*ns, pool)
		for i := 0; i < *count; i++ {
			jobArgs := args
			if *count > 1 {
				jobArgs = map[string]interface{}{"i": i}
				for k, v := range args {
					jobArgs[k] = v
				}
			}
			job, err := enqueue(enqueuer, *name, jobArgs, *unique, keyMap, *in)
			if err != nil {
				fail(err)
			}
			if job == nil {
				fmt.Println("dup")
				continue
			}
			line, err := json.Marshal(job)
			if err != nil {
				fail(err)
			}
			fmt.Println(string(line))
		}
	default:
		fail(fmt.Errorf("unknown command %q", os.Args[1]))
	}
}

func enqueue(e *work.Enqueuer, name string, args map[string]interface{}, unique bool, keyMap map[string]interface{}, in int64) (*work.Job, error) {
	if keyMap != nil {
		return enqueueByKey(e, name, args, keyMap, in)
	}
	if in > 0 {
		var scheduled *work.ScheduledJob
		var err error
		if unique {
			scheduled, err = e.EnqueueUniqueIn(name, in, args)
		} else {
			scheduled, err = e.EnqueueIn(name, in, args)
		}
		if scheduled == nil {
			return nil, err
		}
		return scheduled.Job, err
	}
	if unique {
		return e.EnqueueUnique(name, args)
	}
	return e.Enqueue(name, args)
}

func names(list string) map[string]bool {
	set := map[string]bool{}
	for _, name := range strings.Split(list, ",") {
		set[name] = true
	}
	return set
}

func runPool(pool *redis.Pool, ns, label, jobs string, failures, holds map[string]bool, concurrency uint) {
	wp := work.NewWorkerPool(context{}, concurrency, ns, pool)
	for _, spec := range strings.Split(jobs, ",") {
		if spec == "" {
			continue
		}
		name, options := spec, work.JobOptions{}
		if at := strings.LastIndex(spec, ":"); at >= 0 {
			limit, err := strconv.ParseUint(spec[at+1:], 10, 32)
			if err != nil {
				fail(fmt.Errorf("-jobs %q: %v", spec, err))
			}
			name, options.MaxConcurrency = spec[:at], uint(limit)
		}
		jobName := name
		wp.JobWithOptions(jobName, options, func(job *work.Job) error {
			if err := record(pool, ns, label, job); err != nil {
				return err
			}
			for holds[jobName] && !released(pool, ns) {
				time.Sleep(50 * time.Millisecond)
			}
			if failures[jobName] {
				return fmt.Errorf("%s fails on purpose", jobName)
			}
			return nil
		})
	}
	wp.Start()
	fmt.Println("started")
	io.Copy(io.Discard, bufio.NewReader(os.Stdin))
	wp.Stop()
	fmt.Println("stopped")
}

func record(pool *redis.Pool, ns, label string, job *work.Job) error {
	run, err := json.Marshal(map[string]interface{}{"side": label, "name": job.Name, "id": job.ID, "args": job.Args})
	if err != nil {
		return err
	}
	conn := pool.Get()
	defer conn.Close()
	_, err = conn.Do("RPUSH", ns+":interop:runs", run)
	return err
}

func released(pool *redis.Pool, ns string) bool {
	conn := pool.Get()
	defer conn.Close()
	exists, err := redis.Bool(conn.Do("EXISTS", ns+":interop:release"))
	return err == nil && exists
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "gofleet:", err)
	os.Exit(2)
}
