package signalhub

// userIndex maps a user ID to that user's connections, so a send to a user
// costs O(that user's connections), never a scan of all connections. IDs are
// compared ordinally (case-sensitive), as SignalR does. Pure data; the hub
// locks around it.
type userIndex[C comparable] struct {
	byUser multimap[string, C]
}

// add records c as one of user's connections. An empty user is ignored:
// anonymous connections belong to no user.
func (u *userIndex[C]) add(user string, c C) {
	if user != "" {
		u.byUser.add(user, c)
	}
}

// remove forgets c as one of user's connections and frees the user when it
// was the last.
func (u *userIndex[C]) remove(user string, c C) {
	if user != "" {
		u.byUser.remove(user, c)
	}
}

// conns returns the user's connections (nil when none). Read-only.
func (u *userIndex[C]) conns(user string) map[C]struct{} { return u.byUser.get(user) }

// users reports how many users have at least one connection.
func (u *userIndex[C]) users() int { return u.byUser.keys() }
