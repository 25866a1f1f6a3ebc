//kfn:world function

// Package export_wit_world holds {{name}}, a kfn *function* in Go: one record in,
// zero or more records out. The line above tells `kfn build` the world.
package export_wit_world

import (
	"fmt"

	"wit_component/kfn_component_host"
	. "wit_component/wit_world"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
)

// Process is called for each input record.
func Process(msg Message) witTypes.Result[[]Output, string] {
	if len(msg.Value) == 0 {
		// An error sends the record to the binding's dead-letter topic.
		return witTypes.Err[[]Output]("{{name}}: empty value")
	}
	kfn_component_host.Log(kfn_component_host.LevelInfo,
		fmt.Sprintf("{{name}}: %d bytes from %s", len(msg.Value), msg.Topic))
	return witTypes.Ok[[]Output, string]([]Output{{
		Topic:   witTypes.None[string](), // the binding's `out`; Some("topic") routes elsewhere
		Key:     msg.Key,
		Value:   msg.Value,
		Headers: msg.Headers,
	}})
}
