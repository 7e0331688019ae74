package analysis_test

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/framering/framering/analysis"
	"github.com/framering/framering/frame"
)

// An analyzer process reads each frame in place and emits one JSON line
// per frame, wrapping the Result with its own fields.
func Example() {
	g := frame.Packed(64, 32, frame.Mono8)
	gen, err := frame.NewGenerator(g, true)
	if err != nil {
		fmt.Println(err)
		return
	}
	buf := make([]byte, g.Size()) // in the analyzer: a read-only shared-memory view
	a, err := analysis.New(analysis.DefaultOptions())
	if err != nil {
		fmt.Println(err)
		return
	}
	enc := json.NewEncoder(os.Stdout)
	for seq := uint64(1); seq <= 2; seq++ {
		if err := gen.Fill(buf, seq); err != nil {
			fmt.Println(err)
			return
		}
		r, err := a.Analyze(buf, g) // r is valid until the next Analyze
		if err != nil {
			fmt.Println(err)
			return
		}
		line := struct {
			Seq uint64 `json:"seq"`
			*analysis.Result
		}{seq, r}
		if err := enc.Encode(line); err != nil {
			fmt.Println(err)
			return
		}
	}
	// Output:
	// {"seq":1,"format":"Mono8","width":64,"height":32,"stats":{"count":2016,"min":16,"max":255,"sum":169240,"mean":83.9484126984127,"stddev":29.506948963981575},"defect_count":1,"defects":[{"x":3,"y":3,"w":4,"h":4,"area":16,"cx":4.5,"cy":4.5,"bright":true}]}
	// {"seq":2,"format":"Mono8","width":64,"height":32,"stats":{"count":2016,"min":0,"max":255,"sum":205613,"mean":101.99057539682539,"stddev":60.38388610266313},"defect_count":2,"defects":[{"x":4,"y":9,"w":5,"h":5,"area":25,"cx":6,"cy":11,"bright":false},{"x":23,"y":15,"w":15,"h":15,"area":225,"cx":30,"cy":22,"bright":true}]}
}
