//go:build !bykey

package main

import (
	"fmt"

	"github.com/gocraft/work"
)

// enqueueByKey: gocraft/work v0.5.1 has no by-key unique jobs.
func enqueueByKey(*work.Enqueuer, string, map[string]interface{}, map[string]interface{}, int64) (*work.Job, error) {
	return nil, fmt.Errorf("-key: this gocraft/work has no EnqueueUniqueByKey")
}
