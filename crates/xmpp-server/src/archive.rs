//! Group-commit archive writer: many sessions' archive and offline rows are written in one
//! transaction; after the commit each job's delivery runs, in commit order, then its sender
//! is told (so a stanza is acknowledged only once durable, and MAM order is delivery order).
use iris_store::{ArchiveRow, OfflineRow, Store};
use tokio::sync::{mpsc, oneshot, watch};

/// Work run after a job's rows are committed (delivery), in commit order.
pub type AfterCommit = Box<dyn FnOnce() + Send>;

/// One unit of durable work.
pub struct Job {
    pub archive: Vec<ArchiveRow>,
    pub offline: Vec<OfflineRow>,
    pub after: AfterCommit,
    pub done: oneshot::Sender<bool>,
}

/// Submits jobs to the writer task; cheap to clone.
#[derive(Clone)]
pub struct ArchiveWriter {
    tx: mpsc::Sender<Job>,
}

impl ArchiveWriter {
    /// Starts the writer; it stops (after writing what was queued) when `stop` turns true
    /// or every handle is dropped.
    pub fn start(
        store: Store,
        batch_max: usize,
        stop: watch::Receiver<bool>,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(batch_max.max(1) * 4);
        let task = tokio::spawn(run(store, rx, batch_max.max(1), stop));
        (ArchiveWriter { tx }, task)
    }

    /// Queues a job; the receiver says whether it was committed (false: not written, do not
    /// acknowledge).
    pub async fn submit(
        &self,
        archive: Vec<ArchiveRow>,
        offline: Vec<OfflineRow>,
        after: AfterCommit,
    ) -> oneshot::Receiver<bool> {
        let (done, rx) = oneshot::channel();
        // A send error drops `done`: the receiver then reads as not committed.
        let _ = self
            .tx
            .send(Job {
                archive,
                offline,
                after,
                done,
            })
            .await;
        rx
    }
}

async fn run(
    store: Store,
    mut rx: mpsc::Receiver<Job>,
    batch_max: usize,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let first = tokio::select! {
            job = rx.recv() => job,
            _ = crate::hub::stopped(&mut stop) => {
                rx.close();
                rx.recv().await
            }
        };
        let Some(first) = first else { break };
        let mut batch = vec![first];
        let mut rows = batch[0].archive.len() + batch[0].offline.len();
        while rows < batch_max {
            match rx.try_recv() {
                Ok(job) => {
                    rows += job.archive.len() + job.offline.len();
                    batch.push(job);
                }
                Err(_) => break,
            }
        }
        commit(&store, batch).await;
    }
}

async fn commit(store: &Store, batch: Vec<Job>) {
    let archive: Vec<ArchiveRow> = batch
        .iter()
        .flat_map(|j| j.archive.iter().cloned())
        .collect();
    let offline: Vec<OfflineRow> = batch
        .iter()
        .flat_map(|j| j.offline.iter().cloned())
        .collect();
    let ok = if archive.is_empty() && offline.is_empty() {
        true
    } else {
        match store.archive_batch(&archive, &offline).await {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = %e, rows = archive.len() + offline.len(), "archive commit failed");
                false
            }
        }
    };
    for job in batch {
        if ok {
            (job.after)();
        }
        let _ = job.done.send(ok);
    }
}
