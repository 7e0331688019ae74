package shm

import "unsafe"

// PRFM PSTL1KEEP is part of the base ARMv8 instruction set.
const hasPrefetchW = true

//go:noescape
func prefetch(p unsafe.Pointer)

//go:noescape
func prefetchw(p unsafe.Pointer)
