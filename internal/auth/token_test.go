package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

func TestParseReadsRolesAndComments(t *testing.T) {
	file := "# operators\n\nadmin  s3cret-admin\n\trunner\trun-token \n# viewer commented-out\nviewer view-token\n"
	s, err := Parse(strings.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() != 3 {
		t.Fatalf("Len = %d, want 3", s.Len())
	}
	for token, want := range map[string]Role{"s3cret-admin": Admin, "run-token": Runner, "view-token": Viewer} {
		p, ok := s.Lookup(token)
		if !ok {
			t.Errorf("Lookup(%q) found nothing", token)
			continue
		}
		if p.Role != want {
			t.Errorf("Lookup(%q).Role = %s, want %s", token, p.Role, want)
		}
		digest := sha256.Sum256([]byte(token))
		if wantID := hex.EncodeToString(digest[:4]); p.ID != wantID {
			t.Errorf("Lookup(%q).ID = %q, want %q", token, p.ID, wantID)
		}
	}
}

func TestParseRejectsBadLines(t *testing.T) {
	cases := []struct {
		name, file, want string
	}{
		{"one field", "admin xyzzy-good\nrunner\n", "line 2: expected ROLE TOKEN, got 1 fields"},
		{"three fields", "# c\nadmin xyzzy-a xyzzy-b\n", "line 2: expected ROLE TOKEN, got 3 fields"},
		{"unknown role", "\n\nroot xyzzy-root\n", `line 3: unknown role "root"`},
		{"role in upper case", "ADMIN xyzzy-upper\n", `line 1: unknown role "ADMIN"`},
		{"duplicate token", "admin xyzzy-same\nviewer xyzzy-same\n", "line 2: the token of line 1 is listed again"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tc.file))
			if err == nil {
				t.Fatal("Parse returned no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %q, want it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "xyzzy") {
				t.Errorf("error %q contains a token", err)
			}
		})
	}
}

func TestLookupRejectsNearMisses(t *testing.T) {
	s, err := Parse(strings.NewReader("admin correct-horse\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, token := range []string{"", "correct-hors", "correct-horse ", "correct-horsf", "Correct-horse", "correct-horse-battery"} {
		if p, ok := s.Lookup(token); ok {
			t.Errorf("Lookup(%q) = %v, want no match", token, p)
		}
	}
	var empty *Store
	if _, ok := empty.Lookup("correct-horse"); ok {
		t.Error("Lookup on a nil store found a token")
	}
}

func TestBearerToken(t *testing.T) {
	cases := []struct {
		header, token string
		ok            bool
	}{
		{"Bearer abc", "abc", true},
		{"bearer abc", "abc", true},
		{"Bearer  abc ", "abc", true},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"Basic abc", "", false},
		{"", "", false},
	}
	for _, tc := range cases {
		token, ok := bearerToken(tc.header)
		if token != tc.token || ok != tc.ok {
			t.Errorf("bearerToken(%q) = %q, %v; want %q, %v", tc.header, token, ok, tc.token, tc.ok)
		}
	}
}
