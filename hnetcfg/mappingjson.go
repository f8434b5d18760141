package hnetcfg

import (
	"encoding/json"
	"strconv"
)

// decodeMappings decodes the daemon's list of port mappings. A list is the
// answer read most often, and encoding/json spends most of a list's time
// in reflection, so a scanner that knows the list's shape reads it first;
// whatever it does not expect (an escape, an unknown or differently
// spelled field, a null) is left to encoding/json. Either way the result is
// what encoding/json gives.
func decodeMappings(data []byte) ([]PortMappingProps, error) {
	if ps, ok := scanMappings(data); ok {
		return ps, nil
	}
	var ps []PortMappingProps
	err := json.Unmarshal(data, &ps)
	return ps, err
}

// decodeMapping decodes one mapping's properties, as decodeMappings does
// a list.
func decodeMapping(data []byte) (PortMappingProps, error) {
	if p, ok := scanMapping(data); ok {
		return p, nil
	}
	var p PortMappingProps
	err := json.Unmarshal(data, &p)
	return p, err
}

// scanMapping reads data as one object of a list scanMappings reads.
func scanMapping(data []byte) (p PortMappingProps, ok bool) {
	s := scanner{b: string(data)}
	if !s.object(&p) || !s.end() {
		return PortMappingProps{}, false
	}
	return p, true
}

// scanMappings reads data as a JSON array of PortMappingProps objects
// whose strings have no escapes and only ASCII, its numbers plain
// integers, its fields spelled as the daemon writes them. ok is false for
// anything else.
func scanMappings(data []byte) (ps []PortMappingProps, ok bool) {
	// One string for the whole answer: the fields are its substrings, one
	// allocation instead of one per field.
	s := scanner{b: string(data)}
	if !s.next('[') {
		return nil, false
	}
	ps = make([]PortMappingProps, 0, len(data)/256)
	if s.next(']') {
		return ps, s.end()
	}
	for {
		var p PortMappingProps
		if !s.object(&p) {
			return nil, false
		}
		ps = append(ps, p)
		if s.next(']') {
			return ps, s.end()
		}
		if !s.next(',') {
			return nil, false
		}
	}
}

type scanner struct {
	b string
	i int
}

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// next consumes c, after white space, if it comes next.
func (s *scanner) next(c byte) bool {
	s.space()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// end reports whether only white space is left.
func (s *scanner) end() bool {
	s.space()
	return s.i == len(s.b)
}

func (s *scanner) object(p *PortMappingProps) bool {
	if !s.next('{') {
		return false
	}
	if s.next('}') {
		return true
	}
	for {
		key, ok := s.string()
		if !ok || !s.next(':') {
			return false
		}
		switch key {
		case "id":
			p.ID, ok = s.string()
		case "name":
			p.Name, ok = s.string()
		case "protocol":
			var v string
			v, ok = s.string()
			p.Protocol = Protocol(v)
		case "externalPort":
			p.ExternalPort, ok = s.int()
		case "internalPort":
			p.InternalPort, ok = s.int()
		case "targetName":
			p.TargetName, ok = s.string()
		case "targetIPAddress":
			p.TargetIPAddress, ok = s.string()
		case "enabled":
			p.Enabled, ok = s.bool()
		case "options":
			p.Options, ok = s.int()
		case "resolvedIPAddress":
			p.ResolvedIPAddress, ok = s.string()
		case "unresolved":
			p.Unresolved, ok = s.bool()
		case "applyError":
			p.ApplyError, ok = s.string()
		case "origin":
			var v string
			v, ok = s.string()
			p.Origin = MappingOrigin(v)
		case "client":
			p.Client, ok = s.string()
		case "expires":
			p.Expires, ok = s.string()
		default:
			return false
		}
		if !ok {
			return false
		}
		if s.next('}') {
			return true
		}
		if !s.next(',') {
			return false
		}
	}
}

// string reads a string of printable ASCII without escapes.
func (s *scanner) string() (string, bool) {
	if !s.next('"') {
		return "", false
	}
	for j := s.i; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			v := s.b[s.i:j]
			s.i = j + 1
			return v, true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return "", false
		}
	}
	return "", false
}

// int reads an integer of at most 15 digits, written as JSON writes one.
func (s *scanner) int() (int, bool) {
	s.space()
	j := s.i
	if j < len(s.b) && s.b[j] == '-' {
		j++
	}
	start := j
	for j < len(s.b) && s.b[j] >= '0' && s.b[j] <= '9' {
		j++
	}
	if n := j - start; n == 0 || n > 15 || (n > 1 && s.b[start] == '0') {
		return 0, false
	}
	if j < len(s.b) && (s.b[j] == '.' || s.b[j] == 'e' || s.b[j] == 'E') {
		return 0, false
	}
	v, err := strconv.Atoi(s.b[s.i:j])
	s.i = j
	return v, err == nil
}

func (s *scanner) bool() (bool, bool) {
	s.space()
	switch rest := s.b[s.i:]; {
	case len(rest) >= 4 && rest[:4] == "true":
		s.i += 4
		return true, true
	case len(rest) >= 5 && rest[:5] == "false":
		s.i += 5
		return false, true
	}
	return false, false
}
