package nats

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
)

// maxVerbatim is the longest channel name, in bytes, whose subject holds
// the name itself; longer names are hashed (see the package documentation).
const maxVerbatim = 256

var encoding = base64.RawURLEncoding

// subject returns the NATS subject of channel: one literal token after
// the prefix and a marker token, made of base64url characters only.
func (b *Backplane) subject(channel string) string {
	var stack [512]byte // room for most subjects: one allocation, the string
	buf := append(stack[:0], b.prefix...)
	if len(channel) <= maxVerbatim {
		buf = append(buf, ".c."...)
		buf = encoding.AppendEncode(buf, []byte(channel))
	} else {
		sum := sha256.Sum256([]byte(channel))
		buf = append(buf, ".h."...)
		buf = encoding.AppendEncode(buf, sum[:])
	}
	return string(buf)
}

// checkPrefix reports whether prefix is a literal subject that leaves
// room for the channel tokens.
func checkPrefix(prefix string) error {
	if len(prefix) > 256 {
		return fmt.Errorf("backplane/nats: Options.Prefix is %d bytes long, more than 256", len(prefix))
	}
	for tok := range strings.SplitSeq(prefix, ".") {
		if tok == "" {
			return fmt.Errorf("backplane/nats: Options.Prefix %q has an empty token", prefix)
		}
		for i := range len(tok) {
			if c := tok[i]; c <= ' ' || c > '~' || c == '*' || c == '>' {
				return fmt.Errorf("backplane/nats: Options.Prefix %q: %q is not allowed in a subject prefix", prefix, c)
			}
		}
	}
	return nil
}
