package archive

import "time"

// Retention says which old segments the Writer deletes (not yet applied).
type Retention struct {
	MaxBytes int64
	MaxAge   time.Duration
	MinFree  int64
}

func (r Retention) enabled() bool { return r.MaxBytes > 0 || r.MaxAge > 0 || r.MinFree > 0 }

func (r Retention) checkEvery() time.Duration { return time.Second }

func (w *Writer) applyRetention() {}
