//kfn:world supplier

// Package export_wit_world holds {{name}}, a kfn *supplier* in Go: called on the
// binding's schedule (`every:`). The line above tells `kfn build` the world.
package export_wit_world

import (
	"fmt"

	"wit_component/kfn_component_host"
	. "wit_component/wit_world"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
)

// Supply returns the records to produce this time.
func Supply() witTypes.Result[[]Output, string] {
	value := fmt.Sprintf(`{"source":"{{name}}","at":%d}`, kfn_component_host.NowMs())
	return witTypes.Ok[[]Output, string]([]Output{{
		Topic: witTypes.None[string](), // the binding's `out`
		Key:   witTypes.None[[]uint8](),
		Value: []byte(value),
	}})
}
