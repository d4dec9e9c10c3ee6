//! The download audit trail's writer: handlers hand it rows without waiting, a thread
//! of its own writes them in batches.
//!
//! [`Audit::record`] never blocks and never touches the disk: it puts the row on a
//! bounded channel (when the channel is full — the disk cannot keep up — the row is
//! dropped and counted in `filegate_audit_dropped_total`, because serving must not wait).
//! The writer thread gathers rows until `audit.batch_size` are waiting or the oldest has
//! waited `audit.flush_ms`, then writes them in one transaction. [`Audit::close`]
//! writes what is left and stops the thread; `filegate serve` calls it after the HTTP
//! server has finished its running downloads, so a graceful stop loses no row.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use crate::catalog::audit::{self as table, NewRequest};
use crate::catalog::{self, Catalog};
use crate::metrics::Metrics;

/// Rows that may wait for the writer; past this, rows are dropped (and counted).
const QUEUE: usize = 100_000;
/// Rows kept for a retry when a batch could not be written.
const MAX_PENDING: usize = 200_000;

enum Msg {
    Row(Box<NewRequest>),
    Flush(mpsc::Sender<()>),
    Close,
}

pub struct Audit {
    tx: SyncSender<Msg>,
    metrics: Arc<Metrics>,
    /// Rows queued and not yet written (nor dropped) by the writer.
    queued: Arc<AtomicUsize>,
    batch: usize,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// The writer, to wake it: on the first queued row (to start its `flush_ms` wait),
    /// when `batch` rows wait, and for a flush or close — not on every row, which cost
    /// one futex wake-up and context switch per request under load.
    waker: Option<Thread>,
}

impl Audit {
    /// Starts the writer thread.
    pub fn start(catalog: Catalog, metrics: Arc<Metrics>, flush_every: Duration, batch: usize) -> Audit {
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let m = metrics.clone();
        let queued = Arc::new(AtomicUsize::new(0));
        let q = queued.clone();
        let batch = batch.max(1);
        let thread = std::thread::Builder::new()
            .name("filegate-audit".into())
            .spawn(move || writer(rx, q, catalog, m, flush_every, batch))
            .ok();
        if thread.is_none() {
            tracing::error!("cannot start the audit writer thread; audit rows are dropped");
        }
        Audit {
            tx,
            metrics,
            queued,
            batch,
            waker: thread.as_ref().map(|t| t.thread().clone()),
            thread: Mutex::new(thread),
        }
    }

    fn wake(&self) {
        if let Some(t) = &self.waker {
            t.unpark();
        }
    }

    /// Queues a row; never waits.
    pub fn record(&self, row: NewRequest) {
        // Counted before it is sent, so the writer never sees a row it has not counted.
        let before = self.queued.fetch_add(1, Ordering::AcqRel);
        match self.tx.try_send(Msg::Row(Box::new(row))) {
            Ok(()) => {
                if before == 0 || before + 1 == self.batch {
                    self.wake();
                }
            }
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.queued.fetch_sub(1, Ordering::AcqRel);
                if self
                    .metrics
                    .audit_dropped
                    .fetch_add(1, Ordering::Relaxed)
                    .is_multiple_of(10_000)
                {
                    tracing::warn!("audit queue full or closed: dropping audit rows");
                }
            }
        }
    }

    /// Blocks until every row queued before the call is written (tests, CLI).
    pub fn flush(&self) {
        let (ack, done) = mpsc::channel();
        if self.tx.send(Msg::Flush(ack)).is_ok() {
            self.wake();
            let _ = done.recv();
        }
    }

    /// Writes what is queued and stops the writer; later rows are dropped. Blocks.
    pub fn close(&self) {
        let _ = self.tx.send(Msg::Close);
        self.wake();
        let handle = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

impl Drop for Audit {
    /// Without this the writer, parked with nothing to do, would never see the channel
    /// close: ask it to write what is left and stop (it is not waited for).
    fn drop(&mut self) {
        let _ = self.tx.try_send(Msg::Close);
        self.wake();
    }
}

fn writer(
    rx: mpsc::Receiver<Msg>,
    queued: Arc<AtomicUsize>,
    catalog: Catalog,
    metrics: Arc<Metrics>,
    flush_every: Duration,
    batch: usize,
) {
    let mut rows: Vec<NewRequest> = Vec::with_capacity(batch);
    let mut deadline: Option<Instant> = None;
    let write = |rows: &mut Vec<NewRequest>| {
        if rows.is_empty() {
            return;
        }
        let result = catalog.conn().map_err(|e| e.to_string()).and_then(|mut c| {
            catalog::write_tx(&mut c, |tx| table::insert_batch(tx, rows)).map_err(|e| e.to_string())
        });
        match result {
            Ok(new) => {
                metrics.downloads.fetch_add(new as u64, Ordering::Relaxed);
                queued.fetch_sub(rows.len(), Ordering::AcqRel);
                rows.clear();
            }
            Err(e) => {
                tracing::warn!(error = %e, rows = rows.len(), "writing audit rows failed; retrying later");
                if rows.len() > MAX_PENDING {
                    let n = rows.len() - MAX_PENDING;
                    rows.drain(..n);
                    queued.fetch_sub(n, Ordering::AcqRel);
                    metrics.audit_dropped.fetch_add(n as u64, Ordering::Relaxed);
                }
            }
        }
    };
    let mut acks = Vec::new();
    loop {
        // Take everything queued; the writer is woken (unparked) rather than waiting
        // on the channel, so queuing a row costs no wake-up in the common case.
        let mut closing = false;
        loop {
            match rx.try_recv() {
                Ok(Msg::Row(r)) => {
                    rows.push(*r);
                    deadline = deadline.or_else(|| Some(Instant::now() + flush_every));
                    if rows.len() >= batch {
                        write(&mut rows);
                    }
                }
                Ok(Msg::Flush(ack)) => acks.push(ack),
                Ok(Msg::Close) | Err(TryRecvError::Disconnected) => {
                    closing = true;
                    break;
                }
                Err(TryRecvError::Empty) => break,
            }
        }
        let due = deadline.is_some_and(|d| Instant::now() >= d);
        if closing || due || !acks.is_empty() || rows.len() >= batch {
            write(&mut rows);
            deadline = (!rows.is_empty()).then(|| Instant::now() + flush_every);
            for ack in acks.drain(..) {
                let _ = ack.send(());
            }
        }
        if closing {
            return;
        }
        if queued.load(Ordering::Acquire) > rows.len() {
            // Rows were queued while this thread was busy: their senders saw a non-zero
            // count and did not wake it, so take them now rather than sleep on them.
            std::thread::yield_now();
            continue;
        }
        match deadline {
            None => std::thread::park(),
            Some(d) => std::thread::park_timeout(d.saturating_duration_since(Instant::now())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn row(i: usize) -> NewRequest {
        NewRequest {
            at: i as i64,
            link: (i as u64 % 7).to_be_bytes().to_vec(),
            client: "192.0.2.1".into(),
            outcome: String::new(),
            file_id: None,
            app_id: None,
            tag: None,
            item: None,
            link_expires_at: None,
            anti_fraud: false,
            method: "GET".into(),
            status: 200,
            range: None,
            bytes: 1,
            completed: true,
            ms: 0,
        }
    }

    fn written(catalog: &Catalog) -> i64 {
        let c = catalog.conn().unwrap();
        c.query_row("SELECT count(*) FROM download_requests", [], |r| r.get(0))
            .unwrap()
    }

    /// Rows queued while the writer is busy writing wake nobody; they must still be
    /// written within `flush_ms` (once, a row queued during a write waited forever).
    #[test]
    fn every_row_is_written_without_a_flush() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::open(dir.path()).unwrap();
        let audit = Arc::new(Audit::start(
            catalog.clone(),
            Arc::new(Metrics::default()),
            Duration::from_millis(10),
            50,
        ));
        // One row every ~10 ms, give or take, so that rows keep landing while the
        // writer commits the previous one (at its 10 ms deadline).
        for i in 0..200 {
            audit.record(row(i));
            std::thread::sleep(Duration::from_micros(8_000 + 700 * (i as u64 % 7)));
        }
        let mut n = 0;
        for _ in 0..500 {
            n = written(&catalog);
            if n == 200 {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(n, 200, "rows left waiting in the queue");
        audit.close();
    }
}
