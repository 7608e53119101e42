package blocks

import (
	"testing"
)

func TestIsDecimalText(t *testing.T) {
	tests := []struct {
		text string
		want bool
	}{
		{"1", true},
		{"-1.5", true},
		{"+2", true},
		{"0.5", true},
		{"-.5", true},
		{"5.", true},
		{"1e5", true},
		{"1E-5", true},
		{"2.5e+10", true},
		{"0", true},
		{"", false},
		{".", false},
		{"-", false},
		{"+-1", false},
		{"1e", false},
		{"1e+-5", false},
		{"1.2.3", false},
		{"00.5", false},
		{"007", false},
		{"NaN", false},
		{"inf", false},
		{"0x1p-2", false},
		{"1_000", false},
		{"1e400", false},
		{"1,5", false},
	}
	for _, tt := range tests {
		if got := isDecimalText(tt.text); got != tt.want {
			t.Errorf("isDecimalText(%q) = %v, want %v", tt.text, got, tt.want)
		}
	}
}

func TestIsIntegerText(t *testing.T) {
	tests := []struct {
		text string
		want bool
	}{
		{"0", true},
		{"-0", true},
		{"+12", true},
		{"9223372036854775807", true},
		{"9223372036854775808", false},
		{"01", false},
		{"1.0", false},
		{"--1", false},
		{"1e3", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := isIntegerText(tt.text); got != tt.want {
			t.Errorf("isIntegerText(%q) = %v, want %v", tt.text, got, tt.want)
		}
	}
}

func TestIsDateText(t *testing.T) {
	tests := []struct {
		text string
		want bool
	}{
		{"2012-01-01", true},
		{"2012-02-29", true},
		{"2013-02-29", false},
		{"2012-1-01", false},
		{"2012/01/01", false},
		{"2012-01-01T00:00:00Z", false},
		{"20120101", false},
	}
	for _, tt := range tests {
		if got := isDateText(tt.text); got != tt.want {
			t.Errorf("isDateText(%q) = %v, want %v", tt.text, got, tt.want)
		}
	}
}
