module github.com/framering/framering

go 1.26.0

require (
	github.com/HdrHistogram/hdrhistogram-go v1.4.0
	github.com/cilium/ebpf v0.22.0
	github.com/edsrzf/mmap-go v1.2.0
	github.com/klauspost/compress v1.20.3
	golang.org/x/image v0.47.0
	golang.org/x/sys v0.49.0
)
