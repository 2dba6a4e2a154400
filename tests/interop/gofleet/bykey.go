//go:build bykey

package main

import "github.com/gocraft/work"

// enqueueByKey uses gocraft/work's EnqueueUniqueByKey / EnqueueUniqueInByKey (master; not in v0.5.1).
func enqueueByKey(e *work.Enqueuer, name string, args, keyMap map[string]interface{}, in int64) (*work.Job, error) {
	if in > 0 {
		scheduled, err := e.EnqueueUniqueInByKey(name, in, args, keyMap)
		if scheduled == nil {
			return nil, err
		}
		return scheduled.Job, err
	}
	return e.EnqueueUniqueByKey(name, args, keyMap)
}
