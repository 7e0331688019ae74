package archive

// SetRetentionHook installs a function that retention runs after it moved
// the manifest's low-water mark and before it deletes the files (tests:
// a kill -9 at exactly that moment).
func SetRetentionHook(f func()) { retentionHook = f }
