package backplane_test

import (
	"fmt"

	"github.com/signalhub/signalhub/backplane"
)

// A hub encodes one Message per publish and decodes what its Handler gets.
func ExampleMessage() {
	out := backplane.Message{
		Origin:  "node-1",
		Kind:    backplane.Invocation,
		Names:   []string{"room 1", "room 2"},
		Index:   1,
		Except:  []string{"conn-7"},
		Payload: []byte(`{"type":1,"target":"Receive","arguments":["hi"]}`),
	}
	data, err := out.AppendBinary(nil)
	if err != nil {
		fmt.Println(err)
		return
	}

	var in backplane.Message
	if err := in.UnmarshalBinary(data); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(in.Kind, in.Origin, in.Names[in.Index], in.Except, len(data), "bytes")
	// Output: Invocation node-1 room 2 [conn-7] 83 bytes
}
