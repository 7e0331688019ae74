package analysis

// SetBandBytes sets the band size of the statistics pass (see bandBytes)
// and returns a function that restores it. Tests use it to put band edges
// through blobs on small frames.
func SetBandBytes(n int) (restore func()) {
	old := bandBytes
	bandBytes = n
	return func() { bandBytes = old }
}
