package signalhub

// groupIndex records group membership both ways, so a send to a group costs
// O(its members) and a disconnect costs O(that connection's groups). Empty
// groups are freed. Group names are compared ordinally. Pure data; the hub
// locks around it.
type groupIndex[C comparable] struct {
	members multimap[string, C] // group -> connections
	joined  multimap[C, string] // connection -> groups
}

// add puts c in group and reports whether it was not a member yet.
func (g *groupIndex[C]) add(group string, c C) bool {
	if !g.members.add(group, c) {
		return false
	}
	g.joined.add(c, group)
	return true
}

// remove takes c out of group and reports whether it was a member.
func (g *groupIndex[C]) remove(group string, c C) bool {
	if !g.members.remove(group, c) {
		return false
	}
	g.joined.remove(c, group)
	return true
}

// removeConn takes c out of every group it is in.
func (g *groupIndex[C]) removeConn(c C) {
	for group := range g.joined.get(c) {
		g.members.remove(group, c)
	}
	delete(g.joined.m, c)
}

// conns returns the group's members (nil when none). Read-only.
func (g *groupIndex[C]) conns(group string) map[C]struct{} { return g.members.get(group) }

// groupsOf returns the groups c is in (nil when none). Read-only.
func (g *groupIndex[C]) groupsOf(c C) map[string]struct{} { return g.joined.get(c) }

// groups reports how many groups have at least one member.
func (g *groupIndex[C]) groups() int { return g.members.keys() }
