//! Output that cannot stall a live capture.
//!
//! Whoever reads tcpeek's stderr (or stdout with `--json`) may stop reading:
//! a paused terminal, a pager, a stuck log shipper. A blocking write would
//! then stop the aggregator, and with it the counters on the socket. Live
//! capture therefore writes through a bounded queue drained by a thread of
//! its own: when the queue is full, handshake lines are dropped and counted
//! (the summary reports them), never the counters. Capture files keep
//! blocking writes: there, waiting loses nothing.

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Which standard stream a message is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dest {
    Stdout,
    Stderr,
}

type Message = (Dest, Vec<u8>);

/// The queue and its writer thread.
pub struct OutputQueue {
    tx: Option<SyncSender<Message>>,
    shared: Arc<Shared>,
    done: Receiver<()>,
}

#[derive(Default)]
struct Shared {
    dropped: AtomicU64,
    /// The first write error of the writer thread (e.g. a closed pipe).
    failed: Mutex<Option<io::ErrorKind>>,
}

impl OutputQueue {
    /// Starts the writer thread; at most `capacity` messages wait.
    pub fn spawn(capacity: usize) -> io::Result<OutputQueue> {
        let (tx, rx) = mpsc::sync_channel::<Message>(capacity);
        let (done_tx, done) = mpsc::channel();
        let shared = Arc::new(Shared::default());
        let s = shared.clone();
        thread::Builder::new()
            .name("output".into())
            .spawn(move || {
                if let Err(e) = drain(&rx) {
                    *s.failed.lock().unwrap_or_else(|e| e.into_inner()) = Some(e.kind());
                }
                let _ = done_tx.send(());
            })?;
        Ok(OutputQueue {
            tx: Some(tx),
            shared,
            done,
        })
    }

    /// A writer for `dest` whose writes never block: each write is one
    /// message, dropped and counted when the queue is full.
    pub fn writer(&self, dest: Dest) -> QueueWriter {
        QueueWriter {
            tx: self.tx.clone(),
            dest,
            shared: self.shared.clone(),
        }
    }

    /// Messages dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Queues `bytes`, waiting for room until `deadline` (for the summary,
    /// which must not be dropped for a moment's congestion, nor hang exit
    /// on a reader that never comes back).
    pub fn send_until(&self, dest: Dest, bytes: Vec<u8>, deadline: Instant) -> bool {
        let Some(tx) = &self.tx else {
            return false;
        };
        let mut msg = (dest, bytes);
        loop {
            match tx.try_send(msg) {
                Ok(()) => return true,
                Err(TrySendError::Disconnected(_)) => return false,
                Err(TrySendError::Full(m)) if Instant::now() < deadline => {
                    msg = m;
                    thread::sleep(Duration::from_millis(5));
                }
                Err(TrySendError::Full(_)) => return false,
            }
        }
    }

    /// Closes the queue and waits until everything queued is written, or
    /// `deadline`; returns whether it all went out.
    pub fn close(mut self, deadline: Instant) -> bool {
        // Writers handed out hold senders too: they are gone by now (the
        // aggregator is done), or the wait ends at the deadline.
        drop(self.tx.take());
        let left = deadline.saturating_duration_since(Instant::now());
        self.done.recv_timeout(left).is_ok()
    }
}

/// Writes messages until every sender is gone.
fn drain(rx: &Receiver<Message>) -> io::Result<()> {
    let mut out = io::BufWriter::new(io::stdout());
    let mut err = io::BufWriter::new(io::stderr());
    while let Ok((dest, bytes)) = rx.recv() {
        let mut next = Some((dest, bytes));
        // Write what is queued, then flush once the queue is empty.
        while let Some((dest, bytes)) = next.take() {
            match dest {
                Dest::Stdout => out.write_all(&bytes)?,
                Dest::Stderr => err.write_all(&bytes)?,
            }
            next = rx.try_recv().ok();
        }
        out.flush()?;
        err.flush()?;
    }
    Ok(())
}

/// See [`OutputQueue::writer`].
pub struct QueueWriter {
    tx: Option<SyncSender<Message>>,
    dest: Dest,
    shared: Arc<Shared>,
}

impl Write for QueueWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let failed = *self.shared.failed.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(kind) = failed {
            return Err(io::Error::from(kind));
        }
        let Some(tx) = &self.tx else {
            return Err(io::ErrorKind::BrokenPipe.into());
        };
        match tx.try_send((self.dest, buf.to_vec())) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Disconnected(_)) => return Err(io::ErrorKind::BrokenPipe.into()),
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_blocking() {
        // A queue whose writer never runs: build the parts by hand.
        let (tx, _rx) = mpsc::sync_channel::<Message>(2);
        let shared = Arc::new(Shared::default());
        let mut w = QueueWriter {
            tx: Some(tx),
            dest: Dest::Stderr,
            shared: shared.clone(),
        };
        for _ in 0..5 {
            w.write_all(b"line\n").unwrap();
        }
        assert_eq!(shared.dropped.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn a_failed_writer_is_reported_to_the_next_write() {
        let (tx, _rx) = mpsc::sync_channel::<Message>(2);
        let shared = Arc::new(Shared::default());
        *shared.failed.lock().unwrap() = Some(io::ErrorKind::BrokenPipe);
        let mut w = QueueWriter {
            tx: Some(tx),
            dest: Dest::Stdout,
            shared,
        };
        let e = w.write_all(b"x\n").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
    }
}
