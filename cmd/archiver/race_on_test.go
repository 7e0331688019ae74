//go:build race

package main_test

// raceEnabled builds the archiver under test with -race too.
const raceEnabled = true
