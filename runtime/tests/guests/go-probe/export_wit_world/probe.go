//kfn:world function

// Package export_wit_world is a Go test guest for the `function` world (see
// runtime/tests/polyglot_native_guests.rs), driven by the UTF-8 input value:
//
//	error         -> error "go probe error: asked to fail"
//	config:KEY    -> one output: config(KEY) or "<unset>"
//	log:MSG       -> logs MSG at info, one output "logged"
//	now           -> one output: now-ms in decimal
//	anything else -> "probe-go:" + value, same key, topic none
//
// `kfn build` generates the other packages of this module (wit_world,
// kfn_component_host, kfn_component_types, wit_exports.go) from wit/kfn.wit.
package export_wit_world

import (
	"strconv"
	"strings"

	"wit_component/kfn_component_host"
	. "wit_component/wit_world"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
)

func out(value string) Output {
	return Output{
		Topic: witTypes.None[string](),
		Key:   witTypes.None[[]uint8](),
		Value: []byte(value),
	}
}

func ok(outputs ...Output) witTypes.Result[[]Output, string] {
	return witTypes.Ok[[]Output, string](outputs)
}

// Process is the `process` export of the `function` world.
func Process(msg Message) witTypes.Result[[]Output, string] {
	input := string(msg.Value)
	if input == "error" {
		return witTypes.Err[[]Output, string]("go probe error: asked to fail")
	}
	if key, found := strings.CutPrefix(input, "config:"); found {
		return ok(out(kfn_component_host.Config(key).SomeOr("<unset>")))
	}
	if text, found := strings.CutPrefix(input, "log:"); found {
		kfn_component_host.Log(kfn_component_host.LevelInfo, text)
		return ok(out("logged"))
	}
	if input == "now" {
		return ok(out(strconv.FormatInt(kfn_component_host.NowMs(), 10)))
	}
	echo := out("probe-go:" + input)
	echo.Key = msg.Key
	return ok(echo)
}
