package native_test

import (
	"errors"
	"testing"

	"github.com/framering/framering/native"
)

func TestParseFeatureSetting(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want native.FeatureSetting
		ok   bool
	}{
		{"Width=640", native.FeatureSetting{Name: "Width", Value: "640"}, true},
		{"ExposureTime=1e4", native.FeatureSetting{Name: "ExposureTime", Value: "1e4"}, true},
		{"DeviceUserID=a=b c", native.FeatureSetting{Name: "DeviceUserID", Value: "a=b c"}, true},
		{"DeviceUserID=", native.FeatureSetting{Name: "DeviceUserID", Value: ""}, true},
		{" Gain_1 =2", native.FeatureSetting{Name: "Gain_1", Value: "2"}, true},
		{"Width", native.FeatureSetting{}, false},
		{"=640", native.FeatureSetting{}, false},
		{"Wi dth=640", native.FeatureSetting{}, false},
		{"R[0x100]=1", native.FeatureSetting{}, false},
	} {
		got, err := native.ParseFeatureSetting(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseFeatureSetting(%q) = %+v, %v", tc.in, got, err)
		}
		if err != nil && !errors.Is(err, native.ErrInvalid) {
			t.Errorf("ParseFeatureSetting(%q): %v is not ErrInvalid", tc.in, err)
		}
		if err == nil && got.String() != tc.want.Name+"="+tc.want.Value {
			t.Errorf("%q: String() = %q", tc.in, got.String())
		}
	}
}

// TestAravisOptionsChecked: impossible options are refused before any
// camera is touched, in every build.
func TestAravisOptionsChecked(t *testing.T) {
	for _, o := range []native.CameraOptions{
		{PacketSize: -2},
		{Notify: "carrier-pigeon"},
		{ProbeAfter: -1},
		{Settings: []native.FeatureSetting{{Name: "", Value: "1"}}},
	} {
		_, err := native.Open(native.KindAravis, native.Config{Camera: &o})
		if err == nil {
			t.Fatalf("%+v accepted", o)
		}
		if !errors.Is(err, native.ErrInvalid) {
			t.Errorf("%+v: %v", o, err)
		}
	}
}
