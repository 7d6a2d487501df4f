//go:build !race

package mpnet

const raceEnabled = false
