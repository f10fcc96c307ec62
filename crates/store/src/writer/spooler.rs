//! The spooler thread: append what has queued up, sync once, acknowledge,
//! pass the rows on to the loader.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, mpsc as std_mpsc};
use std::time::Instant;

use tokio::sync::mpsc;

use super::loader::LoadJob;
use super::{CommitError, LoaderMessage, SpoolerMessage, WriteJob};
use crate::metrics::StoreMetrics;
use crate::spool::{Spool, SpoolError};

/// Most jobs one sync covers; more wait for the next, so the first of a
/// burst is not held back by the last.
const MAX_GROUP: usize = 4096;

pub(super) fn run(
    mut rx: mpsc::UnboundedReceiver<SpoolerMessage>,
    spool: &Mutex<Spool>,
    loader: &std_mpsc::Sender<LoaderMessage>,
    acked: &AtomicU64,
    metrics: &StoreMetrics,
) {
    let mut stopping = false;
    while !stopping {
        let mut group = match rx.blocking_recv() {
            Some(SpoolerMessage::Write(job)) => vec![job],
            Some(SpoolerMessage::Shutdown) | None => break,
        };
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(SpoolerMessage::Write(job)) => group.push(job),
                Ok(SpoolerMessage::Shutdown) => {
                    stopping = true;
                    break;
                }
                Err(_) => break,
            }
        }
        spool_group(group, spool, loader, acked, metrics);
    }
    // Whatever is still queued was accepted into the queue: spool it too.
    rx.close();
    let mut rest = Vec::new();
    while let Ok(msg) = rx.try_recv() {
        if let SpoolerMessage::Write(job) = msg {
            rest.push(job);
        }
    }
    if !rest.is_empty() {
        spool_group(rest, spool, loader, acked, metrics);
    }
    let _ = loader.send(LoaderMessage::Shutdown);
}

fn spool_group(
    group: Vec<WriteJob>,
    spool: &Mutex<Spool>,
    loader: &std_mpsc::Sender<LoaderMessage>,
    acked: &AtomicU64,
    metrics: &StoreMetrics,
) {
    let mut appended = Vec::with_capacity(group.len());
    let synced = {
        let mut spool = spool.lock().unwrap_or_else(|p| p.into_inner());
        for job in group {
            match spool.append_payload(&job.payload) {
                Ok(seq) => appended.push((seq, job)),
                Err(SpoolError::Full { used, max }) => {
                    let _ = job.done.send(Err(CommitError::SpoolFull { used, max }));
                }
                Err(e) => {
                    tracing::error!(error = %e, "appending to the spool failed");
                    let _ = job.done.send(Err(CommitError::Spool(e.to_string())));
                }
            }
        }
        let started = Instant::now();
        let synced = if appended.is_empty() {
            Ok(())
        } else {
            spool.sync()
        };
        metrics
            .spool_sync_duration
            .observe(started.elapsed().as_secs_f64());
        metrics.spool_bytes.set(spool.used() as i64);
        synced
    };
    if let Err(e) = synced {
        // Not acknowledged, so not loaded: a client retries. Should the
        // records have reached the disk anyway, a restart loads them, which
        // a retry makes a duplicate, never a loss.
        tracing::error!(error = %e, jobs = appended.len(), "syncing the spool failed");
        for (_, job) in appended {
            let _ = job.done.send(Err(CommitError::Spool(e.to_string())));
        }
        return;
    }
    let Some(&(last, _)) = appended.last() else {
        return;
    };
    // To the loader before the clients hear "ok", so that a query a client
    // sends next finds the rows on their way (read-your-writes).
    let mut answers = Vec::with_capacity(appended.len());
    for (seq, job) in appended {
        let WriteJob {
            rows, done, held, ..
        } = job;
        let _ = loader.send(LoaderMessage::Load(LoadJob { seq, rows, held }));
        answers.push(done);
    }
    acked.store(last, Ordering::Release);
    for done in answers {
        let _ = done.send(Ok(()));
    }
}
