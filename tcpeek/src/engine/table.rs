//! The session table: a bounded slab of sessions, a hash index over it, and
//! two intrusive lists ordered by last activity (live handshakes, recently
//! finished ones) so that expiry and eviction are O(1) per session.
//!
//! The hash index holds `u32` slot numbers and 32 bits of each key's hash;
//! keys live in the slots. That keeps a tracked handshake at about one
//! hundred and thirty bytes (see BENCHMARKS.md) and lets the table grow
//! lazily up to a hard limit instead of reserving it up front. The stored
//! hash lets the index grow without reading a single slot (a random memory
//! access per entry, which made growth a tenth of the time on a burst of
//! new handshakes) and lets a lookup skip slots whose hash differs.

use std::hash::BuildHasher;

use hashbrown::HashTable;

use super::session::{Key, Session};

const NIL: u32 = u32::MAX;

/// Which list a slot is on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum ListId {
    Live,
    Closed,
}

#[derive(Clone, Copy, Debug)]
struct Links {
    prev: u32,
    next: u32,
}

#[derive(Clone, Copy, Debug)]
struct List {
    head: u32,
    tail: u32,
    len: usize,
}

impl List {
    const EMPTY: List = List {
        head: NIL,
        tail: NIL,
        len: 0,
    };
}

pub(crate) struct Slot {
    pub(crate) session: Session,
    links: Links,
    list: ListId,
}

/// An index entry: a slot number and the key's hash as [`Table::hash`]
/// gives it, folded to 32 bits.
#[derive(Clone, Copy)]
struct Entry {
    slot: u32,
    hash: u32,
}

impl Entry {
    /// The 64-bit hash the index is built with: both halves from the
    /// stored 32 bits, so that hashbrown's bucket (low bits) and tag (top
    /// seven bits) both vary.
    fn wide(h: u32) -> u64 {
        u64::from(h) << 32 | u64::from(h)
    }
}

pub(crate) struct Table {
    index: HashTable<Entry>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    live: List,
    closed: List,
    capacity: usize,
    hasher: foldhash::fast::RandomState,
    /// Finished sessions dropped before their linger time to make room.
    forgotten: u64,
}

impl Table {
    /// A table that never holds more than `capacity` slots (live and closed
    /// together).
    pub(crate) fn new(capacity: usize) -> Table {
        Table {
            index: HashTable::new(),
            slots: Vec::new(),
            free: Vec::new(),
            live: List::EMPTY,
            closed: List::EMPTY,
            capacity: capacity.min(NIL as usize),
            hasher: foldhash::fast::RandomState::default(),
            forgotten: 0,
        }
    }

    /// Finished sessions dropped before their linger time to make room
    /// for new ones.
    pub(crate) fn forgotten(&self) -> u64 {
        self.forgotten
    }

    pub(crate) fn live_len(&self) -> usize {
        self.live.len
    }

    pub(crate) fn closed_len(&self) -> usize {
        self.closed.len
    }

    /// The key's hash, folded to 32 bits.
    fn hash(&self, key: &Key) -> u32 {
        let h = self.hasher.hash_one(key);
        (h ^ (h >> 32)) as u32
    }

    pub(crate) fn find(&self, key: &Key) -> Option<u32> {
        let slots = &self.slots;
        let h = self.hash(key);
        self.index
            .find(Entry::wide(h), |e| {
                e.hash == h && slots[e.slot as usize].session.key == *key
            })
            .map(|e| e.slot)
    }

    pub(crate) fn get(&self, slot: u32) -> &Session {
        &self.slots[slot as usize].session
    }

    pub(crate) fn get_mut(&mut self, slot: u32) -> &mut Session {
        &mut self.slots[slot as usize].session
    }

    pub(crate) fn list_of(&self, slot: u32) -> ListId {
        self.slots[slot as usize].list
    }

    /// Whether a new slot can be had, possibly by evicting the oldest
    /// finished session.
    pub(crate) fn has_room(&self) -> bool {
        self.live.len < self.capacity
    }

    /// Inserts a session whose key is not in the table, on the live list.
    /// Evicts the oldest closed session when the table is at capacity. The
    /// caller checks [`Table::has_room`] first.
    pub(crate) fn insert(&mut self, session: Session) -> u32 {
        debug_assert!(self.has_room());
        if self.live.len + self.closed.len >= self.capacity {
            let oldest = self.closed.head;
            self.remove(oldest);
            self.forgotten += 1;
        }
        let hash = self.hash(&session.key);
        let slot = Slot {
            session,
            links: Links {
                prev: NIL,
                next: NIL,
            },
            list: ListId::Live,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = slot;
                i
            }
            None => {
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        };
        self.index
            .insert_unique(Entry::wide(hash), Entry { slot: i, hash }, |e| {
                Entry::wide(e.hash)
            });
        self.push_tail(i, ListId::Live);
        i
    }

    /// Removes a slot from the table entirely.
    pub(crate) fn remove(&mut self, i: u32) {
        self.unlink(i);
        let hash = self.hash(&self.slots[i as usize].session.key);
        if let Ok(entry) = self.index.find_entry(Entry::wide(hash), |e| e.slot == i) {
            entry.remove();
        }
        self.free.push(i);
    }

    /// Marks activity: moves the slot to the tail of `list` (which may be the
    /// list it is on, or the other one when a session finishes).
    pub(crate) fn touch(&mut self, i: u32, list: ListId) {
        self.unlink(i);
        self.push_tail(i, list);
    }

    /// The least recently touched slot of `list`.
    pub(crate) fn oldest(&self, list: ListId) -> Option<u32> {
        let head = self.list(list).head;
        (head != NIL).then_some(head)
    }

    /// Calls `each` with every session on `list`, oldest first.
    pub(crate) fn for_each_mut(&mut self, list: ListId, mut each: impl FnMut(&mut Session)) {
        let mut i = self.list(list).head;
        while i != NIL {
            let slot = &mut self.slots[i as usize];
            each(&mut slot.session);
            i = slot.links.next;
        }
    }

    /// Bytes held by the table's allocations (for the memory benchmark).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Slot>()
            + self.free.capacity() * 4
            + self.index.allocation_size()
    }

    fn list(&self, id: ListId) -> &List {
        match id {
            ListId::Live => &self.live,
            ListId::Closed => &self.closed,
        }
    }

    fn list_mut(&mut self, id: ListId) -> &mut List {
        match id {
            ListId::Live => &mut self.live,
            ListId::Closed => &mut self.closed,
        }
    }

    fn unlink(&mut self, i: u32) {
        let Slot { links, list, .. } = self.slots[i as usize];
        if links.prev != NIL {
            self.slots[links.prev as usize].links.next = links.next;
        } else {
            self.list_mut(list).head = links.next;
        }
        if links.next != NIL {
            self.slots[links.next as usize].links.prev = links.prev;
        } else {
            self.list_mut(list).tail = links.prev;
        }
        self.list_mut(list).len -= 1;
        self.slots[i as usize].links = Links {
            prev: NIL,
            next: NIL,
        };
    }

    fn push_tail(&mut self, i: u32, id: ListId) {
        let tail = self.list(id).tail;
        self.slots[i as usize].links = Links {
            prev: tail,
            next: NIL,
        };
        self.slots[i as usize].list = id;
        if tail != NIL {
            self.slots[tail as usize].links.next = i;
        }
        let list = self.list_mut(id);
        if list.head == NIL {
            list.head = i;
        }
        list.tail = i;
        list.len += 1;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};
    use std::net::IpAddr;

    use super::*;
    use crate::engine::session::Opening;
    use crate::event::{Addr, Connection, Endpoint};

    fn key(client: [u8; 4], cport: u16, sport: u16) -> Key {
        Key::of(
            Endpoint::new(Addr::from(IpAddr::from(client)), cport),
            Endpoint::new(Addr::from(IpAddr::from([10, 0, 0, 1])), sport),
        )
        .0
    }

    fn session(k: Key) -> Session {
        let conn = Connection {
            client: k.lo,
            server: k.hi,
        };
        Session::new(conn, Opening::new(1, 0), 0, 0)
    }

    /// The keys a busy host sees: many client ports of one client, many
    /// server ports, many clients.
    fn busy_keys() -> Vec<Key> {
        let mut keys = Vec::new();
        for p in 1..=4096u16 {
            keys.push(key([10, 0, 0, 2], p, 80));
            keys.push(key([10, 0, 0, 2], 40000, p));
            keys.push(key([10, 1, (p >> 8) as u8, p as u8], 40000, 80));
        }
        keys
    }

    #[test]
    fn keys_differing_in_one_field_hash_apart() {
        // A hash that ignores a field (a port, an address) puts every
        // connection of one client in one bucket chain: each segment then
        // compares against all of them, and a busy host's engine goes
        // quadratic.
        let t = Table::new(16);
        let keys = busy_keys();
        for chunk in keys.chunks(4096) {
            let distinct = chunk.iter().map(|k| t.hash(k)).collect::<HashSet<_>>();
            assert!(
                distinct.len() >= chunk.len() - 2,
                "{} of {}",
                distinct.len(),
                chunk.len()
            );
        }
    }

    #[test]
    fn the_index_hash_varies_in_bucket_and_tag_bits() {
        // hashbrown picks the bucket from the low bits and compares a tag
        // from the top seven before it reads an entry: both must vary, or
        // every lookup walks a whole group.
        let t = Table::new(16);
        let wide: Vec<u64> = busy_keys().iter().map(|k| Entry::wide(t.hash(k))).collect();
        let buckets: HashSet<_> = wide.iter().map(|w| w & 0xfff).collect();
        let tags: HashSet<_> = wide.iter().map(|w| w >> 57).collect();
        assert!(buckets.len() > 3500, "{} of 4096 buckets", buckets.len());
        assert_eq!(tags.len(), 128);
    }

    #[test]
    fn keys_with_the_same_32_bit_hash_stay_apart() {
        // The index stores 32 bits of each key's hash; two keys may share
        // them, and a lookup must still compare the keys.
        let mut t = Table::new(16);
        let mut seen = HashMap::new();
        let (a, b) = (0u32..)
            .map(|i| key((i >> 16).to_be_bytes(), i as u16, 80))
            .find_map(|k| seen.insert(t.hash(&k), k).map(|other| (other, k)))
            .unwrap();
        assert_ne!(a, b);
        let i = t.insert(session(a));
        assert_eq!(t.find(&a), Some(i));
        assert_eq!(t.find(&b), None);
    }
}
