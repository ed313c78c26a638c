package scan

import (
	"errors"
	"fmt"
)

// keySet is a set of up to 128 keyword bits.
type keySet [2]uint64

func (k *keySet) add(bit int)        { k[bit>>6] |= 1 << (bit & 63) }
func (k keySet) has(bit int) bool    { return k[bit>>6]&(1<<(bit&63)) != 0 }
func (k keySet) meets(m keySet) bool { return k[0]&m[0] != 0 || k[1]&m[1] != 0 }
func (k *keySet) union(m keySet)     { k[0] |= m[0]; k[1] |= m[1] }

// keywords finds which of a set of words a text holds, in one pass over its bytes: an
// Aho–Corasick automaton compiled to a table indexed by state and byte class. ASCII letters
// match whatever their case, so that a plain ASCII line gives the answer its lowercased form
// would without being lowercased; other bytes match exactly.
type keywords struct {
	class [256]uint8 // byte → class; class 0 is every byte no word holds
	// delta[row+class] is the next state's row (its index times the number of classes) in the
	// low 24 bits and, in the top 8, the index in outs of the words that end in that state
	// (suffixes included), 0 for none.
	delta []uint32
	outs  []keySet
}

const (
	rowBits = 24
	rowMask = 1<<rowBits - 1
)

// maxKeywordTable bounds the table's entries: rows must fit in rowBits (a variable so that a
// test can reach it with a few words).
var maxKeywordTable = rowMask + 1

var errTooManyKeywords = errors.New("scan: keyword automaton too large")

// newKeywords compiles words (lowercase) with the bit each sets when found; several words may
// share a bit. Empty words are ignored.
func newKeywords(words []string, bits []int) (*keywords, error) {
	k := &keywords{}
	classes := 1
	for _, w := range words {
		for i := 0; i < len(w); i++ {
			c := w[i]
			if k.class[c] != 0 {
				continue
			}
			k.class[c] = uint8(classes)
			if 'a' <= c && c <= 'z' {
				k.class[c-'a'+'A'] = uint8(classes)
			} else if 'A' <= c && c <= 'Z' {
				k.class[c-'A'+'a'] = uint8(classes)
			}
			classes++ // at most 231: 256 bytes, the 26 letters sharing with their capitals
		}
	}
	for _, b := range bits {
		if b < 0 || b >= 128 {
			return nil, fmt.Errorf("scan: keyword bit %d out of range", b)
		}
	}
	// The trie: child[state*classes+class], 0 meaning none (the root is no one's child).
	child := make([]int32, classes)
	outs := []keySet{{}}
	for wi, w := range words {
		if w == "" {
			continue
		}
		st := int32(0)
		for i := 0; i < len(w); i++ {
			c := int32(k.class[w[i]])
			next := child[st*int32(classes)+c]
			if next == 0 {
				next = int32(len(outs))
				if (int(next)+1)*classes > maxKeywordTable {
					return nil, errTooManyKeywords
				}
				outs = append(outs, keySet{})
				child = append(child, make([]int32, classes)...)
				child[st*int32(classes)+c] = next
			}
			st = next
		}
		outs[st].add(bits[wi])
	}
	// Breadth first, each state's missing transitions are its failure state's (the longest
	// proper suffix that is a prefix of a word), which come earlier in the order.
	states := len(outs)
	delta := make([]int32, states*classes)
	fail := make([]int32, states)
	queue := make([]int32, 0, states)
	for c := range classes {
		if t := child[c]; t != 0 {
			delta[c] = t
			queue = append(queue, t)
		}
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		for c := range int32(classes) {
			t := child[s*int32(classes)+c]
			if t == 0 {
				delta[s*int32(classes)+c] = delta[fail[s]*int32(classes)+c]
				continue
			}
			delta[s*int32(classes)+c] = t
			fail[t] = delta[fail[s]*int32(classes)+c]
			outs[t].union(outs[fail[t]])
			queue = append(queue, t)
		}
	}
	// The distinct sets of words found get the indexes 1…255.
	k.outs = []keySet{{}}
	index := map[keySet]uint32{{}: 0}
	k.delta = make([]uint32, len(delta))
	for i, t := range delta {
		o, ok := index[outs[t]]
		if !ok {
			o = uint32(len(k.outs))
			if o > 255 {
				return nil, errTooManyKeywords
			}
			index[outs[t]] = o
			k.outs = append(k.outs, outs[t])
		}
		k.delta[i] = uint32(t)*uint32(classes) | o<<rowBits
	}
	return k, nil
}

// find returns the bits of the words s holds.
func (k *keywords) find(s string) keySet {
	var found keySet
	row := uint32(0)
	for i := 0; i < len(s); i++ {
		e := k.delta[row+uint32(k.class[s[i]])]
		row = e & rowMask
		if e > rowMask {
			found.union(k.outs[e>>rowBits])
		}
	}
	return found
}
