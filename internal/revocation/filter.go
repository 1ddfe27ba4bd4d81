package revocation

import (
	"math/bits"
	"sync/atomic"
)

// filter is a split-block Bloom filter over entry hashes, in front of the
// cache so that Check answers "not revoked" from one cache line instead of a
// look-up in ristretto's large maps (which misses the CPU cache at 1M
// entries).
//
// A filter only ever gains bits: an entry that leaves the cache leaves its
// bits behind, so the false-positive rate grows with churn until the store
// rebuilds a fresh filter from what it holds (Store.rebuildFilter). A false
// positive only costs the cache look-up; a false negative would accept a
// revoked token, so every record is added before it becomes reachable.
//
// It is safe for concurrent use: add and mayContain use atomic word access.
type filter struct {
	blocks []filterBlock
	mask   uint64 // len(blocks) - 1; len is a power of two
	// keys is how many keys the filter is sized for, at 32 bits per key.
	keys  int64
	added atomic.Int64
}

// filterBlock is 256 bits, within one cache line: each key sets one bit in
// each of the eight words.
type filterBlock [8]uint32

// filterSalts are the odd multipliers of the split-block Bloom filter
// (Apache Parquet's SBBF).
var filterSalts = [8]uint32{
	0x47b6137b, 0x44974d91, 0x8824ad5b, 0xa2b7289d,
	0x705495c7, 0x2df1424b, 0x9efc4947, 0x5c6bfb31,
}

// minFilterKeys is the fewest keys a filter is sized for (256 bytes).
const minFilterKeys = 64

// newFilter sizes a filter for at least n keys at 32 bits per key, rounded
// up to a power of two blocks; it is full, at 16 bits per key, after
// 2*keys additions (the point at which the store rebuilds it).
func newFilter(n int) *filter {
	nb := uint64(1) << bits.Len64(uint64((max(n, minFilterKeys)+7)/8-1)) // a block is 8 keys' 32 bits
	return &filter{blocks: make([]filterBlock, nb), mask: nb - 1, keys: int64(nb) * 256 / 32}
}

// full reports whether f has had twice the keys it is sized for added.
func (f *filter) full() bool { return f.added.Load() > 2*f.keys }

func (f *filter) block(h uint64) (*filterBlock, uint32) {
	// The cache shards on the low bits of h; use the high bits here.
	return &f.blocks[(h>>32)&f.mask], uint32(h)
}

func (f *filter) add(h uint64) {
	b, x := f.block(h)
	for i, salt := range filterSalts {
		atomic.OrUint32(&b[i], 1<<((x*salt)>>27))
	}
	f.added.Add(1)
}

func (f *filter) mayContain(h uint64) bool {
	b, x := f.block(h)
	for i, salt := range filterSalts {
		if atomic.LoadUint32(&b[i])&(1<<((x*salt)>>27)) == 0 {
			return false
		}
	}
	return true
}
