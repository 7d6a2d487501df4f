//go:build race

package serve

// raceEnabled shrinks the load test under the race detector, which allows
// at most 8128 live goroutines (each loopback request holds about four).
const raceEnabled = true
