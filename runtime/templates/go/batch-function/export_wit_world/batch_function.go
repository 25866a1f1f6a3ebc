//kfn:world batch-function

// Package export_wit_world holds {{name}}, a kfn *batch function* in Go: many records
// in per call, zero or more records out per record. The line above tells `kfn build`
// the world.
package export_wit_world

import (
	"fmt"

	"wit_component/kfn_component_host"
	. "wit_component/wit_world"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
)

// ProcessBatch gets the records kfn read together (up to 256) and returns one result
// per record, in the same order.
func ProcessBatch(msgs []Message) []witTypes.Result[[]Output, string] {
	kfn_component_host.Log(kfn_component_host.LevelDebug,
		fmt.Sprintf("{{name}}: %d records", len(msgs)))
	results := make([]witTypes.Result[[]Output, string], len(msgs))
	for i, msg := range msgs {
		results[i] = process(msg)
	}
	return results
}

func process(msg Message) witTypes.Result[[]Output, string] {
	if len(msg.Value) == 0 {
		// An error sends this record (only) to the binding's dead-letter topic.
		return witTypes.Err[[]Output]("{{name}}: empty value")
	}
	return witTypes.Ok[[]Output, string]([]Output{{
		Topic:   witTypes.None[string](), // the binding's `out`; Some("topic") routes elsewhere
		Key:     msg.Key,
		Value:   msg.Value,
		Headers: msg.Headers,
	}})
}
