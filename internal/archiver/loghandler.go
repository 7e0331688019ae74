package archiver

import (
	"context"
	"log/slog"
)

// archiveLossMsg is the message archive.Writer logs, at Warn, for every gap
// record it appends.
const archiveLossMsg = "recorded frame loss"

// demoteHandler passes records to its inner handler, demoting the archive's
// per-gap warning to Debug: under sustained upstream drops there is a gap
// record per drop, and the archiver reports losses itself, rate-limited.
type demoteHandler struct{ inner slog.Handler }

func (h demoteHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h demoteHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == archiveLossMsg && r.Level == slog.LevelWarn {
		if !h.inner.Enabled(ctx, slog.LevelDebug) {
			return nil
		}
		r.Level = slog.LevelDebug
	}
	return h.inner.Handle(ctx, r)
}

func (h demoteHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return demoteHandler{h.inner.WithAttrs(attrs)}
}

func (h demoteHandler) WithGroup(name string) slog.Handler {
	return demoteHandler{h.inner.WithGroup(name)}
}
