//kfn:world aggregator

// Package export_wit_world holds {{name}}, a kfn *aggregator* in Go: a windowed
// aggregate whose state kfn keeps. The line above tells `kfn build` the world.
//
// Use it in an `analytics:` stage of kfn.yaml:
//
//	analytics:
//	  my-store: { in: my-topic, key: /name, window: { tumbling: 1m }, aggregate: { function: {{name}} } }
//
// kfn calls Add for each record and each window it falls in, Merge when two session
// windows become one, and Finish when a window changed (for the dashboard and
// queries) and when it closes (the value sent to `out`). The state is bytes you
// define: kfn stores them with the window, writes them to the stage's changelog,
// restores them after a restart and hands them to the next version of this function
// when you rebuild it. So start them with a format version: a later version that
// changes the format can still read (or knowingly refuse) the old one.
//
// Every export is pure: same arguments, same result. An Err refuses a record: it is
// dead-lettered with that message and the window keeps the state it had. A panic
// traps (the record fails without a message).
//
// This one counts records and their bytes: {"records":3,"bytes":240}. Its state is
// 17 bytes: the format version 1, then records and bytes as little-endian uint64.
package export_wit_world

import (
	"encoding/binary"
	"fmt"

	. "wit_component/wit_world"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
)

// format is the first byte of every state this version writes.
const format = 1

// state is what a window has seen so far.
type state struct {
	records uint64
	bytes   uint64
}

func read(b []uint8) (state, error) {
	if len(b) == 0 {
		return state{}, fmt.Errorf("empty state")
	}
	if b[0] != format || len(b) != 17 {
		// Refusing is safe: the record is dead-lettered and the window's state kept,
		// so nothing is lost while you ship a version that reads this format.
		return state{}, fmt.Errorf("unreadable state (format %d, %d bytes): this version reads format %d", b[0], len(b), format)
	}
	return state{
		records: binary.LittleEndian.Uint64(b[1:9]),
		bytes:   binary.LittleEndian.Uint64(b[9:17]),
	}, nil
}

func (s state) write() []uint8 {
	out := make([]uint8, 1, 17)
	out[0] = format
	out = binary.LittleEndian.AppendUint64(out, s.records)
	return binary.LittleEndian.AppendUint64(out, s.bytes)
}

func fail(err error) witTypes.Result[[]uint8, string] {
	return witTypes.Err[[]uint8](err.Error())
}

func ok(b []uint8) witTypes.Result[[]uint8, string] {
	return witTypes.Ok[[]uint8, string](b)
}

// Init is the state of a window with no record yet. Merge(Init(), s) must equal s.
func Init() []uint8 {
	return state{}.write()
}

// Add is the state after msg joins a window whose state is st.
func Add(st []uint8, msg Message) witTypes.Result[[]uint8, string] {
	s, err := read(st)
	if err != nil {
		return fail(err)
	}
	s.records++
	s.bytes += uint64(len(msg.Value))
	return ok(s.write())
}

// Merge is two windows' states as one (when session windows merge).
func Merge(a []uint8, b []uint8) witTypes.Result[[]uint8, string] {
	x, err := read(a)
	if err != nil {
		return fail(err)
	}
	y, err := read(b)
	if err != nil {
		return fail(err)
	}
	return ok(state{records: x.records + y.records, bytes: x.bytes + y.bytes}.write())
}

// Finish is the window's value, as JSON bytes.
func Finish(st []uint8) witTypes.Result[[]uint8, string] {
	s, err := read(st)
	if err != nil {
		return fail(err)
	}
	return ok([]uint8(fmt.Sprintf(`{"records":%d,"bytes":%d}`, s.records, s.bytes)))
}
