//go:build !race

package modernbert

const raceEnabled = false
