// Package inspect is the analyzer command's logic: it attaches to a ring
// with package consumers, runs package analysis on each frame in place
// (straight from the read-only shared-memory view in zero-copy mode),
// and writes one JSON line per frame and a summary line at the end.
//
// Output, one JSON object per line:
//
//	{"seq":7,"epoch":"5e1c0a93d2b44f10","frame_id":7,"timestamp_ns":81234567890,
//	 "latency_ns":41250,"width":640,"height":480,"format":"Mono8",
//	 "stats":{"count":479968,"min":0,"max":255,"sum":38400000,"mean":80.0,"stddev":37.0},
//	 "defect_count":1,"defects":[{"x":10,"y":20,"w":5,"h":5,"area":25,"cx":12,"cy":22,"bright":true}],
//	 "skipped_total":3,"missed_total":0}
//
// "epoch" is the producer run as 16 hex digits (a JSON number would lose
// precision in most JSON readers); "seq" restarts at 1 with each epoch.
// "latency_ns" runs from the capture timestamp (CLOCK_MONOTONIC) to the end
// of the analysis, -1 when the frame has no usable timestamp.
// "histogram" (256 counts) appears with Config.Analysis.Histogram;
// "truncated" and "overflow" as package analysis says. A frame that cannot
// be analyzed (a geometry that does not fit its bytes) gets a line with
// "error" instead of "stats". The last line is {"summary":{...}} (see
// Summary).
package inspect
