package bench

import (
	"bufio"
	"bytes"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Machine describes where a run happened.
type Machine struct {
	CPUModel   string `json:"cpu_model"`
	Cores      int    `json:"cores"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	Kernel     string `json:"kernel"`      // uname -r (/proc/sys/kernel/osrelease)
	KernelFull string `json:"kernel_full"` // /proc/version
	GoVersion  string `json:"go_version"`
	GOARCH     string `json:"goarch"`
	LLCBytes   int64  `json:"llc_bytes"` // as sysfs reports it
	// LLCProbe is the effective LLC measured by the cache probe (cache.go),
	// nil when the throughput section, which runs it, did not run.
	LLCProbe *CacheProbe `json:"llc_probe,omitempty"`
	MemBytes int64       `json:"mem_bytes"`
	Hostname string      `json:"hostname"`
	Root     bool        `json:"root"`
	Date     time.Time   `json:"date"`
}

func describeMachine() Machine {
	m := Machine{Cores: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(),
		GOARCH: runtime.GOARCH, Date: time.Now(), Root: os.Geteuid() == 0}
	m.Hostname, _ = os.Hostname()
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			if ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/version"); err == nil {
		m.KernelFull = strings.TrimSpace(string(b))
	}
	_, m.LLCBytes = sysfsCaches()
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) >= 2 && f[0] == "MemTotal:" {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				m.MemBytes = kb << 10
			}
		}
	}
	return m
}

// sysfsCaches reads CPU 0's caches from sysfs: the size of the outermost
// level (the LLC) and of the largest cache of the levels inside it (0
// each if unknown).
func sysfsCaches() (inner, llc int64) {
	type cache struct {
		level int
		bytes int64
	}
	var cs []cache
	for i := 0; i < 8; i++ {
		dir := "/sys/devices/system/cpu/cpu0/cache/index" + strconv.Itoa(i) + "/"
		b, err := os.ReadFile(dir + "size")
		if err != nil {
			continue
		}
		size, ok := parseCacheSize(string(b))
		lb, err := os.ReadFile(dir + "level")
		level, err2 := strconv.Atoi(strings.TrimSpace(string(lb)))
		if ok && err == nil && err2 == nil {
			cs = append(cs, cache{level, size})
		}
	}
	top := 0
	for _, c := range cs {
		top = max(top, c.level)
	}
	for _, c := range cs {
		if c.level == top {
			llc = max(llc, c.bytes)
		} else {
			inner = max(inner, c.bytes)
		}
	}
	return inner, llc
}

// parseCacheSize parses a sysfs cache size ("48K", "2048K", "260M").
func parseCacheSize(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, strings.TrimSuffix(s, "K")
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, strings.TrimSuffix(s, "M")
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= 0 {
		return 0, false
	}
	return v * mult, true
}

// effectiveLLC is what a working set is judged against: the smaller of
// the sysfs size and the measured one when both exist, else the one that
// does (0: neither); which it is ("measured" or "sysfs"); and whether it
// is only a lower bound. A probe that saw no drop (AtLeast) contradicts no
// reported size, so then the sysfs one stands when there is one.
func (m Machine) effectiveLLC() (bytes int64, source string, atLeast bool) {
	pr := m.LLCProbe
	switch {
	case pr == nil || pr.EffectiveBytes <= 0:
	case m.LLCBytes <= 0:
		return pr.EffectiveBytes, "measured", pr.AtLeast
	case !pr.AtLeast && pr.EffectiveBytes < m.LLCBytes:
		return pr.EffectiveBytes, "measured", false
	}
	return m.LLCBytes, "sysfs", false
}
