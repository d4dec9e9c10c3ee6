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

use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
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
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Audit {
    /// Starts the writer thread.
    pub fn start(catalog: Catalog, metrics: Arc<Metrics>, flush_every: Duration, batch: usize) -> Audit {
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let m = metrics.clone();
        let thread = std::thread::Builder::new()
            .name("filegate-audit".into())
            .spawn(move || writer(rx, catalog, m, flush_every, batch.max(1)))
            .ok();
        if thread.is_none() {
            tracing::error!("cannot start the audit writer thread; audit rows are dropped");
        }
        Audit {
            tx,
            metrics,
            thread: Mutex::new(thread),
        }
    }

    /// Queues a row; never waits.
    pub fn record(&self, row: NewRequest) {
        match self.tx.try_send(Msg::Row(Box::new(row))) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
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
            let _ = done.recv();
        }
    }

    /// Writes what is queued and stops the writer; later rows are dropped. Blocks.
    pub fn close(&self) {
        let _ = self.tx.send(Msg::Close);
        let handle = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

fn writer(
    rx: mpsc::Receiver<Msg>,
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
                rows.clear();
            }
            Err(e) => {
                tracing::warn!(error = %e, rows = rows.len(), "writing audit rows failed; retrying later");
                if rows.len() > MAX_PENDING {
                    let n = rows.len() - MAX_PENDING;
                    rows.drain(..n);
                    metrics.audit_dropped.fetch_add(n as u64, Ordering::Relaxed);
                }
            }
        }
    };
    loop {
        let msg = match deadline {
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(d) => rx.recv_timeout(d.saturating_duration_since(Instant::now())),
        };
        match msg {
            Ok(Msg::Row(r)) => {
                rows.push(*r);
                if rows.len() >= batch {
                    write(&mut rows);
                }
                deadline = if rows.is_empty() {
                    None
                } else {
                    deadline.or_else(|| Some(Instant::now() + flush_every))
                };
            }
            Ok(Msg::Flush(ack)) => {
                write(&mut rows);
                deadline = (!rows.is_empty()).then(|| Instant::now() + flush_every);
                let _ = ack.send(());
            }
            Err(RecvTimeoutError::Timeout) => {
                write(&mut rows);
                deadline = (!rows.is_empty()).then(|| Instant::now() + flush_every);
            }
            Ok(Msg::Close) | Err(RecvTimeoutError::Disconnected) => {
                write(&mut rows);
                return;
            }
        }
    }
}
