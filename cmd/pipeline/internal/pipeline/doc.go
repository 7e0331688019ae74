// Package pipeline runs framering's three processes together — producer,
// analyzer and archiver, each its own binary — for a bounded time, stops
// them in the order that loses nothing, and checks what they report against
// each other: every frame published was archived (or its loss recorded),
// the archive verifies, and the analyzer found the injected defects where
// the source put them. It is what `scripts/pipeline.sh` runs.
package pipeline
