package shm

// LoadFence orders every load before it before every load after it
// (DMB ISHLD). A seqlock reader calls it between reading the protected data
// and re-reading the generation: on arm64 an acquire load does not stop
// earlier plain loads from being satisfied after it.
//
//go:noescape
func LoadFence()
