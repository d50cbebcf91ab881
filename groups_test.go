package signalhub

import (
	"maps"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
)

func sortedKeys[K interface{ ~string }, V any](m map[K]V) []K {
	return slices.Sorted(maps.Keys(m))
}

func TestGroupIndex(t *testing.T) {
	t.Parallel()
	type op struct {
		add      bool
		group    string
		conn     string
		wantDone bool // add: newly added; remove: was a member
	}
	tests := []struct {
		name        string
		ops         []op
		wantMembers map[string][]string // group -> conns
		wantJoined  map[string][]string // conn -> groups
	}{
		{
			name:        "add one",
			ops:         []op{{true, "g", "a", true}},
			wantMembers: map[string][]string{"g": {"a"}},
			wantJoined:  map[string][]string{"a": {"g"}},
		},
		{
			name:        "adding twice is a no-op",
			ops:         []op{{true, "g", "a", true}, {true, "g", "a", false}},
			wantMembers: map[string][]string{"g": {"a"}},
			wantJoined:  map[string][]string{"a": {"g"}},
		},
		{
			name:        "removing a non-member is a no-op",
			ops:         []op{{true, "g", "a", true}, {false, "g", "b", false}, {false, "h", "a", false}},
			wantMembers: map[string][]string{"g": {"a"}},
			wantJoined:  map[string][]string{"a": {"g"}},
		},
		{
			name:        "removing the last member frees the group",
			ops:         []op{{true, "g", "a", true}, {false, "g", "a", true}},
			wantMembers: map[string][]string{},
			wantJoined:  map[string][]string{},
		},
		{
			name: "a connection in many groups",
			ops: []op{
				{true, "g1", "a", true}, {true, "g2", "a", true}, {true, "g2", "b", true},
				{false, "g1", "a", true},
			},
			wantMembers: map[string][]string{"g2": {"a", "b"}},
			wantJoined:  map[string][]string{"a": {"g2"}, "b": {"g2"}},
		},
		{
			name:        "names are compared ordinally",
			ops:         []op{{true, "Room", "a", true}, {true, "room", "a", true}},
			wantMembers: map[string][]string{"Room": {"a"}, "room": {"a"}},
			wantJoined:  map[string][]string{"a": {"Room", "room"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var g groupIndex[string]
			for i, o := range tc.ops {
				var got bool
				if o.add {
					got = g.add(o.group, o.conn)
				} else {
					got = g.remove(o.group, o.conn)
				}
				assert.Equal(t, o.wantDone, got, "op %d %+v", i, o)
			}
			assert.Equal(t, len(tc.wantMembers), g.groups())
			for group, conns := range tc.wantMembers {
				assert.Equal(t, conns, sortedKeys(g.conns(group)), "members of %s", group)
			}
			assert.Len(t, g.joined.m, len(tc.wantJoined), "connections with groups")
			for conn, groups := range tc.wantJoined {
				assert.Equal(t, groups, sortedKeys(g.groupsOf(conn)), "groups of %s", conn)
			}
		})
	}
}

func TestGroupIndexRemoveConn(t *testing.T) {
	t.Parallel()
	var g groupIndex[string]
	for _, group := range []string{"g1", "g2", "g3"} {
		g.add(group, "a")
	}
	g.add("g2", "b")

	g.removeConn("a")
	assert.Nil(t, g.groupsOf("a"))
	assert.Equal(t, 1, g.groups(), "g1 and g3 are freed, g2 keeps b")
	assert.Equal(t, []string{"b"}, sortedKeys(g.conns("g2")))

	g.removeConn("b")
	assert.Equal(t, 0, g.groups())
	assert.Empty(t, g.joined.m)
	g.removeConn("never-joined") // no-op
}

func TestUserIndex(t *testing.T) {
	t.Parallel()
	var u userIndex[string]
	u.add("alice", "phone")
	u.add("alice", "laptop")
	u.add("bob", "b1")
	u.add("", "anonymous") // anonymous connections belong to no user
	assert.Equal(t, 2, u.users())
	assert.Equal(t, []string{"laptop", "phone"}, sortedKeys(u.conns("alice")))
	assert.Nil(t, u.conns(""))
	assert.Nil(t, u.conns("Alice"), "user IDs are case-sensitive")

	u.remove("alice", "phone")
	assert.Equal(t, []string{"laptop"}, sortedKeys(u.conns("alice")))
	u.remove("alice", "laptop")
	assert.Nil(t, u.conns("alice"))
	assert.Equal(t, 1, u.users(), "a user with no connections is freed")
	u.remove("alice", "laptop") // no-op
	u.remove("", "anonymous")   // no-op
	assert.Equal(t, 1, u.users())
}
