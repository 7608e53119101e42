// Package auth holds API token access control: the token store read from
// a tokens file, and the gin middleware that checks a request's bearer
// token against the role its route needs.
package auth

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
)

// Role is a caller's permission level. A higher role may do everything a
// lower one may: Admin ⊇ Runner ⊇ Viewer.
type Role int

// Roles, from least to most permitted. Public marks a route that needs no
// token and is never assigned to a token.
const (
	Public Role = iota
	Viewer
	Runner
	Admin
)

// String returns the role's name as written in the tokens file.
func (r Role) String() string {
	switch r {
	case Public:
		return "public"
	case Viewer:
		return "viewer"
	case Runner:
		return "runner"
	case Admin:
		return "admin"
	default:
		return fmt.Sprintf("Role(%d)", int(r))
	}
}

// ParseRole returns the role named admin, runner or viewer.
func ParseRole(name string) (Role, error) {
	switch name {
	case "admin":
		return Admin, nil
	case "runner":
		return Runner, nil
	case "viewer":
		return Viewer, nil
	default:
		return 0, fmt.Errorf("unknown role %q; expected admin, runner or viewer", name)
	}
}

// Principal is the caller a valid token identifies.
type Principal struct {
	// Role is the token's role.
	Role Role
	// ID is the first 8 hex digits of the token's SHA-256 digest. It
	// distinguishes tokens in records without revealing them.
	ID string
}

// String returns the role and id, such as "runner:1a2b3c4d".
func (p Principal) String() string {
	return p.Role.String() + ":" + p.ID
}

// Store contains the SHA-256 digests of the configured tokens, never the
// tokens themselves. It is safe for concurrent use, because it is not
// changed after Parse.
type Store struct {
	entries []entry
}

type entry struct {
	digest    [sha256.Size]byte
	principal Principal
}

// LoadFile reads a tokens file in the format that Parse describes.
func LoadFile(path string) (*Store, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading tokens file: %w", err)
	}
	defer f.Close()
	s, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("tokens file %s: %w", path, err)
	}
	return s, nil
}

// Parse reads one "ROLE TOKEN" pair per line, separated by spaces or
// tabs. Blank lines and lines starting with # are skipped. A malformed
// line, an unknown role or a token listed twice is an error naming the
// line number; the error never contains a token.
func Parse(r io.Reader) (*Store, error) {
	s := &Store{}
	seen := make(map[[sha256.Size]byte]int)
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.Fields(text)
		if len(fields) != 2 {
			return nil, fmt.Errorf("line %d: expected ROLE TOKEN, got %d fields", line, len(fields))
		}
		role, err := ParseRole(fields[0])
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		digest := sha256.Sum256([]byte(fields[1]))
		if first, ok := seen[digest]; ok {
			return nil, fmt.Errorf("line %d: the token of line %d is listed again", line, first)
		}
		seen[digest] = line
		s.entries = append(s.entries, entry{
			digest:    digest,
			principal: Principal{Role: role, ID: hex.EncodeToString(digest[:4])},
		})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", line+1, err)
	}
	return s, nil
}

// Len returns the number of tokens.
func (s *Store) Len() int {
	if s == nil {
		return 0
	}
	return len(s.entries)
}

// Lookup returns the principal of token. Both sides are hashed with
// SHA-256 and compared in constant time, and every entry is compared, so
// the time taken reveals neither the token's length nor which entry
// matched. A nil store matches no token.
func (s *Store) Lookup(token string) (Principal, bool) {
	if s == nil {
		return Principal{}, false
	}
	digest := sha256.Sum256([]byte(token))
	var found Principal
	ok := 0
	for _, e := range s.entries {
		if subtle.ConstantTimeCompare(digest[:], e.digest[:]) == 1 {
			found = e.principal
			ok = 1
		}
	}
	return found, ok == 1
}
