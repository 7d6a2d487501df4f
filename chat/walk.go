package chat

import (
	"reflect"

	"github.com/nikolalohinski/gonja/v2/nodes"
	"github.com/nikolalohinski/gonja/v2/tokens"
)

var (
	tokenType = reflect.TypeFor[*tokens.Token]()
	callType  = reflect.TypeFor[*nodes.Call]()
	nameType  = reflect.TypeFor[*nodes.Name]()
)

// seenKey identifies a node already walked (the tree has parent links).
type seenKey struct {
	t reflect.Type
	p uintptr
}

// walkCalls calls found with the name of every function called by name (f(...))
// anywhere under n. It walks the engine's syntax tree by reflection, since the
// tree has no visitor of its own.
// Unexported fields are walked too: statements keep their bodies there.
func walkCalls(n any, found func(string), seen map[seenKey]bool) {
	walkValue(reflect.ValueOf(n), found, seen)
}

func walkValue(v reflect.Value, found func(string), seen map[seenKey]bool) {
	if !v.IsValid() {
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() || v.Type() == tokenType {
			return
		}
		key := seenKey{v.Type(), v.Pointer()}
		if seen[key] {
			return
		}
		seen[key] = true
		if v.Type() == callType {
			// Read through reflection only: v may come from an unexported field.
			fn := v.Elem().FieldByName("Func")
			if fn.Kind() == reflect.Interface && !fn.IsNil() && fn.Elem().Type() == nameType && !fn.Elem().IsNil() {
				if tok := fn.Elem().Elem().FieldByName("Name"); !tok.IsNil() {
					found(tok.Elem().FieldByName("Val").String())
				}
			}
		}
		walkValue(v.Elem(), found, seen)
	case reflect.Interface:
		if !v.IsNil() {
			walkValue(v.Elem(), found, seen)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			walkValue(v.Field(i), found, seen)
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			walkValue(v.Index(i), found, seen)
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			walkValue(it.Value(), found, seen)
		}
	}
}
