//kfn:world consumer

// Package export_wit_world holds {{name}}, a kfn *consumer* in Go: it receives each
// record for a side effect. The line above tells `kfn build` the world.
package export_wit_world

import (
	"fmt"

	"wit_component/kfn_component_host"
	. "wit_component/wit_world"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
)

// Consume is called for each input record; an error fails (dead-letters) the record.
func Consume(msg Message) witTypes.Result[witTypes.Unit, string] {
	kfn_component_host.Log(kfn_component_host.LevelInfo,
		fmt.Sprintf("{{name}} got %s[%d]@%d: %s", msg.Topic, msg.Partition, msg.Offset, msg.Value))
	return witTypes.Ok[witTypes.Unit, string](witTypes.Unit{})
}
