package verifier

import (
	"bytes"
	"encoding/json"
	"errors"
	"unicode/utf8"
)

// The JWS header and the claims set are read by exact member name.
// encoding/json matches struct fields case-insensitively, with Unicode
// folding ("ſub" and "SUB" fill Sub), and lets the last of two equal keys
// win: a token could then say one thing to this verifier and another to
// any other reader. readObject keeps names as they are spelt (escapes
// decoded) and refuses a name given twice.

// member is one name and its raw JSON value.
type member struct {
	name  []byte // unescaped
	value []byte // raw JSON, never empty
}

var (
	errNotObject     = errors.New("not a json object of valid utf-8")
	errDuplicateName = errors.New("a member name appears twice")
)

// smallObject is how many members are compared pairwise for duplicates;
// larger objects use a map, so a crafted header costs linear time.
const smallObject = 16

// readObject appends the members of the JSON object b to buf and returns
// them. b must be one object of valid UTF-8 (invalid bytes would be read
// as U+FFFD, making two different strings equal) with no name twice.
func readObject(b []byte, buf []member) ([]member, error) {
	if !utf8.Valid(b) || !json.Valid(b) {
		return nil, errNotObject
	}
	i := skipSpace(b, 0)
	if b[i] != '{' {
		return nil, errNotObject
	}
	members := buf[:0]
	var seen map[string]struct{}
	// b is valid JSON from here on, so the scan below needs no error
	// handling: it only finds where each name and value ends.
	i = skipSpace(b, i+1)
	if b[i] == '}' {
		return members, nil
	}
	for {
		end := stringEnd(b, i)
		name := b[i+1 : end-1]
		if bytes.IndexByte(name, '\\') >= 0 {
			var s string
			if err := json.Unmarshal(b[i:end], &s); err != nil {
				return nil, errNotObject
			}
			name = []byte(s)
		}
		i = skipSpace(b, skipSpace(b, end)+1) // past the ':'
		vend := valueEnd(b, i)
		if len(members) < smallObject {
			for _, m := range members {
				if bytes.Equal(m.name, name) {
					return nil, errDuplicateName
				}
			}
		} else {
			if seen == nil {
				seen = make(map[string]struct{}, 2*smallObject)
				for _, m := range members {
					seen[string(m.name)] = struct{}{}
				}
			}
			if _, dup := seen[string(name)]; dup {
				return nil, errDuplicateName
			}
			seen[string(name)] = struct{}{}
		}
		members = append(members, member{name: name, value: b[i:vend]})
		i = skipSpace(b, vend)
		if b[i] == '}' {
			return members, nil
		}
		i = skipSpace(b, i+1) // past the ','
	}
}

// lookup returns the raw value of the member named exactly name, or nil
// when it is absent or null (JWT readers treat a null claim as absent).
func lookup(members []member, name string) []byte {
	for _, m := range members {
		if string(m.name) == name {
			if string(m.value) == "null" {
				return nil
			}
			return m.value
		}
	}
	return nil
}

// stringValue decodes a raw JSON string value; ok is false for any other
// type.
func stringValue(raw []byte) (s string, ok bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	body := raw[1 : len(raw)-1]
	if bytes.IndexByte(body, '\\') < 0 {
		return string(body), true
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index just past the string starting at b[i] ('"').
func stringEnd(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// valueEnd returns the index just past the value starting at b[i].
func valueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = stringEnd(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return len(b)
	}
	for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\t' && b[i] != '\n' && b[i] != '\r' {
		i++
	}
	return i
}
