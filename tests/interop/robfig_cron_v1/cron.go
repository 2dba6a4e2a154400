// Package cron is the part of robfig/cron v1's API that gocraft/work v0.5.1 uses (Parse, Schedule), on top of
// v3, the only robfig/cron Debian packages: v1's Parse takes 6 fields, seconds first, or a descriptor.
package cron

import v3 "github.com/robfig/cron/v3"

// Schedule is v3's Schedule: Next(time.Time) time.Time, as in v1.
type Schedule = v3.Schedule

var parser = v3.NewParser(v3.Second | v3.Minute | v3.Hour | v3.Dom | v3.Month | v3.Dow | v3.Descriptor)

// Parse reads a 6-field spec (seconds first) or a descriptor such as @every 1h, as v1's Parse does.
func Parse(spec string) (Schedule, error) {
	return parser.Parse(spec)
}
