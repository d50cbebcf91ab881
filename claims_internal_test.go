package signalhub

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestCheckName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, err string }{
		{"alice", ""},
		{"Üni 😀", ""},
		{"a b~c", ""},
		{"abc\x07", "user ID contains the character U+0007: signalhub: invalid name"},
		{"abc\x7f", "user ID contains the character U+007F: signalhub: invalid name"},
		{"\x1b[31m", "user ID contains the character U+001B: signalhub: invalid name"},
		{"ab\u202ecba", "user ID contains the character U+202E: signalhub: invalid name"},
		{"é\u2028", "user ID contains the character U+2028: signalhub: invalid name"},
		{"ab\xffc", "user ID is not valid UTF-8: signalhub: invalid name"},
		{"abcdefghijklm", "user ID of 13 bytes is longer than 12: signalhub: invalid name"},
	} {
		err := checkName("user ID", tc.name, 12)
		if tc.err == "" {
			assert.NoError(t, err, "%q", tc.name)
		} else {
			assert.EqualError(t, err, tc.err, "%q", tc.name)
		}
	}
}
