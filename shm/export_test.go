package shm

// ReserveForTest exposes reserve to the black-box tests, which run it on a
// file in a deliberately tiny tmpfs.
var ReserveForTest = reserve

// HasPrefetchWForTest is whether PrefetchWrite uses a write prefetch.
var HasPrefetchWForTest = hasPrefetchW
