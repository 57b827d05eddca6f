//! Who the servers (the UNIX socket, the metrics endpoint) keep connected
//! when clients crowd them: at most a fixed number, and when a new one
//! comes at the limit, the one idle the longest is closed to make room.
//!
//! "Idle" is a client the server is not answering: one that has not sent
//! its request (an idle or stuck client), or an HTTP connection between
//! requests. A client being answered is never closed for another, so a
//! well-behaved client is served however many idle ones hold connections,
//! and the memory and descriptors they cost stay bounded.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::task::AbortHandle;

/// EMFILE or ENFILE: the process or the system is out of descriptors
/// (an accept that fails so leaves the client waiting in the backlog).
pub fn is_out_of_fds(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// What a client's task reports to its [`Clients`].
#[derive(Clone, Debug)]
pub struct Activity {
    inner: Arc<State>,
}

#[derive(Debug)]
struct State {
    /// Being answered: not to be closed.
    busy: AtomicBool,
    /// When it last finished being answered (or connected), in µs since
    /// the [`Clients`] started.
    last_us: AtomicU64,
    epoch: Instant,
}

impl Activity {
    /// The request has arrived: answering it.
    pub fn busy(&self) {
        self.inner.busy.store(true, Ordering::Relaxed);
    }

    /// Answered: idle again (HTTP keep-alive).
    pub fn idle(&self) {
        let now = self.inner.epoch.elapsed().as_micros() as u64;
        self.inner.last_us.store(now, Ordering::Relaxed);
        self.inner.busy.store(false, Ordering::Relaxed);
    }
}

/// The connected clients of one server.
#[derive(Debug)]
pub struct Clients {
    max: usize,
    next: u64,
    live: BTreeMap<u64, (Activity, AbortHandle)>,
    by_task: BTreeMap<tokio::task::Id, u64>,
    epoch: Instant,
    /// Clients closed to make room for another.
    evicted: Arc<AtomicU64>,
}

impl Clients {
    /// At most `max` (at least 1) at once; `evicted` counts the ones
    /// closed to make room.
    pub fn new(max: usize, evicted: Arc<AtomicU64>) -> Clients {
        Clients {
            max: max.max(1),
            next: 0,
            live: BTreeMap::new(),
            by_task: BTreeMap::new(),
            epoch: Instant::now(),
            evicted,
        }
    }

    pub fn len(&self) -> usize {
        self.live.len()
    }

    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// Makes room for one more client: at the limit, closes the one idle
    /// the longest. False if every client is being answered (the new one
    /// is then to be closed).
    pub fn make_room(&mut self) -> bool {
        if self.live.len() < self.max {
            return true;
        }
        // Tasks that ended but are not joined yet hold no connection.
        self.live.retain(|_, (_, task)| !task.is_finished());
        self.live.len() < self.max || self.evict_idlest()
    }

    /// Closes the client idle the longest, if any is idle.
    pub fn evict_idlest(&mut self) -> bool {
        let idlest = self
            .live
            .iter()
            .filter(|(_, (a, task))| !a.inner.busy.load(Ordering::Relaxed) && !task.is_finished())
            .min_by_key(|(id, (a, _))| (a.inner.last_us.load(Ordering::Relaxed), **id))
            .map(|(id, _)| *id);
        let Some(id) = idlest else {
            return false;
        };
        if let Some((_, abort)) = self.live.remove(&id) {
            abort.abort();
            self.evicted.fetch_add(1, Ordering::Relaxed);
        }
        true
    }

    /// A new client's activity, to hand its task; then [`Clients::started`].
    pub fn activity(&self) -> Activity {
        Activity {
            inner: Arc::new(State {
                busy: AtomicBool::new(false),
                last_us: AtomicU64::new(self.epoch.elapsed().as_micros() as u64),
                epoch: self.epoch,
            }),
        }
    }

    /// Registers the task serving a client.
    pub fn started(&mut self, activity: Activity, task: AbortHandle) {
        let id = self.next;
        self.next += 1;
        self.by_task.insert(task.id(), id);
        self.live.insert(id, (activity, task));
    }

    /// The task with this id has ended (joined, or aborted).
    pub fn ended(&mut self, task: tokio::task::Id) {
        if let Some(id) = self.by_task.remove(&task) {
            self.live.remove(&id);
        }
    }

    /// What `JoinSet::join_next_with_id` gave: that client's task ended
    /// (finished, closed to make room, or panicked).
    pub fn joined(&mut self, done: Result<(tokio::task::Id, ()), tokio::task::JoinError>) {
        self.ended(match done {
            Ok((id, ())) => id,
            Err(e) => e.id(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_client_idle_longest_makes_room_and_a_busy_one_never_does() {
        let evicted = Arc::new(AtomicU64::new(0));
        let mut c = Clients::new(3, evicted.clone());
        let mut set = tokio::task::JoinSet::new();
        let mut acts = Vec::new();
        for _ in 0..3 {
            assert!(c.make_room());
            let a = c.activity();
            let h = set.spawn(std::future::pending::<()>());
            c.started(a.clone(), h);
            acts.push(a);
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        // The first is being answered; the third was answered just now.
        acts[0].busy();
        acts[2].idle();
        assert!(c.make_room());
        assert_eq!(evicted.load(Ordering::Relaxed), 1);
        let gone = set.join_next_with_id().await.unwrap();
        assert!(gone.as_ref().is_err_and(|e| e.is_cancelled()));
        c.joined(gone);
        assert_eq!(c.len(), 2, "the second went: idle since it connected");
        // Only busy ones left at the limit: no room.
        acts[2].busy();
        let a = c.activity();
        c.started(a, set.spawn(std::future::pending::<()>()));
        c.live.values().for_each(|(a, _)| a.busy());
        assert!(!c.make_room());
        assert_eq!(evicted.load(Ordering::Relaxed), 1);
        set.shutdown().await;
    }
}
