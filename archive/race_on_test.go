//go:build race

package archive_test

// raceEnabled makes the heaviest exhaustive tests sample instead (the race
// detector slows them about tenfold).
const raceEnabled = true
