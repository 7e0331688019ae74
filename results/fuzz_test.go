package results

import (
	"errors"
	"io"
	"net"
	"testing"
)

// FuzzClient: whatever a publisher sends after a valid hello, the client
// returns only results that validate, drop notices, or an error; it never
// panics or hangs.
func FuzzClient(f *testing.F) {
	f.Add([]byte(`{"seq":1,"epoch":"00000000000000e1","frame_id":0,"timestamp_ns":5,"defect_count":1,"defects":[{"x":1,"y":2,"w":3,"h":4,"area":12,"bright":true}]}` + "\n"))
	f.Add([]byte(`{"dropped":3,"dropped_total":3}` + "\n" + `{"seq":2,"epoch":"1","defect_count":0,"defects":[]}` + "\n"))
	f.Add([]byte(`{"seq":0}` + "\n"))
	f.Add([]byte(`{"other":1}` + "\n" + `not json` + "\n"))
	f.Add([]byte(`{"seq":1,"epoch":"e1","defect_count":0,"defects":[{"x":-1,"y":0,"w":1,"h":1}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, b := net.Pipe()
		go func() {
			a.Write([]byte(`{"results":1,"ring":"r","analyzer":"a","pid":1}` + "\n"))
			a.Write(data)
			a.Close()
		}()
		defer b.Close()
		c, err := newClient(b)
		if err != nil {
			t.Fatalf("valid hello refused: %v", err)
		}
		for {
			m, err := c.Next()
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, ErrProtocol) {
					// A line too long for the scanner is the only other error.
					t.Logf("%v", err)
				}
				return
			}
			if r := m.Result; r != nil {
				if err := r.validate(); err != nil {
					t.Fatalf("returned an invalid result: %v", err)
				}
			}
		}
	})
}

// FuzzHello: a hello that is not this version's is refused.
func FuzzHello(f *testing.F) {
	f.Add([]byte(`{"results":1,"ring":"r","analyzer":"a","pid":1}`))
	f.Add([]byte(`{"results":2,"ring":"r","analyzer":"a","pid":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, b := net.Pipe()
		go func() {
			a.Write(append(data, '\n'))
			a.Close()
		}()
		defer b.Close()
		c, err := newClient(b)
		if err == nil && (c.Hello.Results != Version || c.Hello.Pid <= 0) {
			t.Fatalf("accepted hello %+v", c.Hello)
		}
	})
}
