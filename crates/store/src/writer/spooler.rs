//! The spooler thread: append what has queued up, sync once, acknowledge,
//! pass the rows on to the loader.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, mpsc as std_mpsc};
use std::time::Instant;

use tokio::sync::mpsc;

use super::health::{Failure, Health, Stage};
use super::loader::LoadJob;
use super::{CommitError, LoaderMessage, SpoolerMessage, WriteJob};
use crate::metrics::StoreMetrics;
use crate::spool::{Spool, SpoolError};

/// Where the spooler's results go.
pub(super) struct Out<'a> {
    pub loader: &'a std_mpsc::Sender<LoaderMessage>,
    pub acked: &'a AtomicU64,
    pub metrics: &'a StoreMetrics,
    pub health: &'a Health,
}

/// Most jobs one sync covers; more wait for the next, so the first of a
/// burst is not held back by the last.
const MAX_GROUP: usize = 4096;

pub(super) fn run(
    mut rx: mpsc::UnboundedReceiver<SpoolerMessage>,
    spool: &Mutex<Spool>,
    out: &Out<'_>,
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
        spool_group(group, spool, out);
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
        spool_group(rest, spool, out);
    }
    let _ = out.loader.send(LoaderMessage::Shutdown);
}

fn spool_group(group: Vec<WriteJob>, spool: &Mutex<Spool>, out: &Out<'_>) {
    let mut appended = Vec::with_capacity(group.len());
    let written = {
        let mut spool = spool.lock().unwrap_or_else(|p| p.into_inner());
        let mut failed = None;
        let mut jobs = group.into_iter();
        for job in jobs.by_ref() {
            match spool.append_payload(&job.payload) {
                Ok(seq) => appended.push((seq, job)),
                Err(SpoolError::Full { used, max }) => {
                    let _ = job.done.send(Err(CommitError::SpoolFull { used, max }));
                }
                Err(e) => {
                    // The records before it in this group are not synced,
                    // and the spool cuts them off before its next append:
                    // none of the group may be acknowledged.
                    appended.push((0, job));
                    failed = Some(e);
                    break;
                }
            }
        }
        appended.extend(jobs.map(|job| (0, job)));
        let started = Instant::now();
        let written = match failed {
            Some(e) => Err(e),
            None if appended.is_empty() => Ok(()),
            None => spool.sync(),
        };
        out.metrics
            .spool_sync_duration
            .observe(started.elapsed().as_secs_f64());
        out.metrics.spool_bytes.set(spool.used() as i64);
        written
    };
    if let Err(e) = written {
        // Not acknowledged, so not loaded: a client retries. The spool cuts
        // what this group wrote before it appends again, so a retry is not
        // stored twice.
        out.health
            .failed(Failure::new(Stage::Spool, &e.to_string(), e.is_disk_full()));
        for (_, job) in appended {
            let _ = job.done.send(Err(CommitError::Spool(e.to_string())));
        }
        return;
    }
    let Some(&(last, _)) = appended.last() else {
        return;
    };
    out.health.worked(Stage::Spool);
    // To the loader before the clients hear "ok", so that a query a client
    // sends next finds the rows on their way (read-your-writes).
    let mut answers = Vec::with_capacity(appended.len());
    for (seq, job) in appended {
        let WriteJob {
            rows, done, held, ..
        } = job;
        let _ = out
            .loader
            .send(LoaderMessage::Load(LoadJob { seq, rows, held }));
        answers.push(done);
    }
    out.acked.store(last, Ordering::Release);
    for done in answers {
        let _ = done.send(Ok(()));
    }
}
