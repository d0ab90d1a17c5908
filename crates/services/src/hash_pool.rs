//! A bounded pool for password hashing: at most `workers` argon2 runs at once, at most `queue`
//! more waiting (beyond that [`Error::Busy`]), and one memory area per worker slot, allocated
//! once and reused, so argon2 no longer allocates and frees its large buffer per login. It
//! knows nothing of logins, lock-out or timing rules; [`crate::accounts`] does.
use crate::password::Hasher;
use crate::Error;
use argon2::Block;
use iris_model::Secret;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

/// Counters of a [`HashPool`], for tests and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Hashes allowed to run at once.
    pub workers: usize,
    /// Hashes allowed to wait for a worker.
    pub queue: usize,
    /// Most hashes seen running at the same time.
    pub peak_running: usize,
    /// Memory areas allocated so far (at most `workers`).
    pub memory_allocations: usize,
    /// Requests refused with [`Error::Busy`].
    pub rejected: usize,
}

/// The pool; cheap to clone (clones share workers, queue and memory).
#[derive(Clone)]
pub struct HashPool {
    inner: Arc<Inner>,
}

struct Inner {
    hasher: Hasher,
    workers: usize,
    queue: usize,
    permits: Arc<Semaphore>,
    /// Requests running or waiting.
    admitted: AtomicUsize,
    running: AtomicUsize,
    peak_running: AtomicUsize,
    allocations: AtomicUsize,
    rejected: AtomicUsize,
    /// Memory areas not in use; never more than `workers`.
    free: Mutex<Vec<Vec<Block>>>,
}

/// One admitted request: leaves the count when dropped (also when the caller gives up).
struct Admission(Arc<Inner>);

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.admitted.fetch_sub(1, Ordering::AcqRel);
    }
}

impl HashPool {
    /// `workers = 0` means one per CPU core.
    pub fn new(hasher: Hasher, workers: usize, queue: usize) -> Self {
        let workers = if workers == 0 {
            std::thread::available_parallelism().map_or(1, usize::from)
        } else {
            workers
        };
        HashPool {
            inner: Arc::new(Inner {
                hasher,
                workers,
                queue,
                permits: Arc::new(Semaphore::new(workers)),
                admitted: AtomicUsize::new(0),
                running: AtomicUsize::new(0),
                peak_running: AtomicUsize::new(0),
                allocations: AtomicUsize::new(0),
                rejected: AtomicUsize::new(0),
                free: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Hashes a new password (policy checked first) into a PHC string.
    pub async fn hash(&self, password: &Secret) -> Result<String, Error> {
        let pw = password.clone();
        self.run(move |h, memory| h.hash_with(pw.expose(), memory))
            .await?
    }

    /// True if `password` matches the PHC string `hash`.
    pub async fn verify(&self, password: &Secret, hash: String) -> Result<bool, Error> {
        let pw = password.clone();
        self.run(move |h, memory| h.verify_with(pw.expose(), &hash, memory))
            .await
    }

    /// Hashes on the calling thread, outside the bound (start-up only), keeping the memory
    /// area for later use.
    pub fn hash_now(&self, password: &str) -> Result<String, Error> {
        let mut memory = self.inner.take_memory();
        let out = self.inner.hasher.hash_with(password, &mut memory);
        self.inner.put_memory(memory);
        out
    }

    pub fn stats(&self) -> PoolStats {
        let i = &self.inner;
        PoolStats {
            workers: i.workers,
            queue: i.queue,
            peak_running: i.peak_running.load(Ordering::Acquire),
            memory_allocations: i.allocations.load(Ordering::Acquire),
            rejected: i.rejected.load(Ordering::Acquire),
        }
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Hasher, &mut [Block]) -> T + Send + 'static,
    ) -> Result<T, Error> {
        let inner = &self.inner;
        let limit = inner.workers.saturating_add(inner.queue);
        if inner.admitted.fetch_add(1, Ordering::AcqRel) >= limit {
            inner.admitted.fetch_sub(1, Ordering::AcqRel);
            inner.rejected.fetch_add(1, Ordering::AcqRel);
            metrics::counter!("iris_password_hash_rejected_total").increment(1);
            return Err(Error::Busy);
        }
        let admission = Admission(inner.clone());
        let permit = inner
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Internal("hash pool closed".into()))?;
        let inner = inner.clone();
        // The closure owns the permit, the admission and the memory: if the caller gives up
        // waiting, the hash still finishes, then frees its slot and returns its memory.
        tokio::task::spawn_blocking(move || {
            let _slot = (admission, permit);
            let mut memory = inner.take_memory();
            let now = inner.running.fetch_add(1, Ordering::AcqRel) + 1;
            inner.peak_running.fetch_max(now, Ordering::AcqRel);
            let out = job(&inner.hasher, &mut memory);
            inner.running.fetch_sub(1, Ordering::AcqRel);
            inner.put_memory(memory);
            out
        })
        .await
        .map_err(|e| Error::Internal(format!("hash task: {e}")))
    }
}

impl Inner {
    fn take_memory(&self) -> Vec<Block> {
        let reused = self.free.lock().ok().and_then(|mut f| f.pop());
        reused.unwrap_or_else(|| {
            self.allocations.fetch_add(1, Ordering::AcqRel);
            self.hasher.new_memory()
        })
    }

    fn put_memory(&self, memory: Vec<Block>) {
        if let Ok(mut free) = self.free.lock() {
            if free.len() < self.workers {
                free.push(memory);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn pool(workers: usize, queue: usize) -> HashPool {
        HashPool::new(Hasher::new(1024, 1).expect("params"), workers, queue)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn at_most_workers_run_at_once_and_memory_is_reused() {
        let pool = pool(2, 64);
        let phc = pool
            .hash(&Secret::new("correct horse"))
            .await
            .expect("hash");
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..24 {
            let (pool, phc) = (pool.clone(), phc.clone());
            tasks.spawn(async move {
                let pw = if i % 2 == 0 {
                    "correct horse"
                } else {
                    "wrong horse!"
                };
                (i, pool.verify(&Secret::new(pw), phc).await)
            });
        }
        while let Some(done) = tasks.join_next().await {
            let (i, ok) = done.expect("task");
            assert_eq!(ok.expect("not busy"), i % 2 == 0, "verdict of request {i}");
        }
        let stats = pool.stats();
        assert!(
            stats.peak_running >= 1 && stats.peak_running <= 2,
            "{stats:?}"
        );
        assert!(stats.memory_allocations <= 2, "{stats:?}");
        assert_eq!(stats.rejected, 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_full_queue_answers_busy_and_recovers() {
        let pool = HashPool::new(Hasher::new(16 * 1024, 2).expect("params"), 1, 2);
        let phc = pool.hash_now("correct horse").expect("hash");
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..12 {
            let (pool, phc) = (pool.clone(), phc.clone());
            tasks.spawn(async move { pool.verify(&Secret::new("correct horse"), phc).await });
        }
        let (mut ok, mut busy) = (0, 0);
        while let Some(done) = tasks.join_next().await {
            match done.expect("task") {
                Ok(true) => ok += 1,
                Err(Error::Busy) => busy += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(
            ok >= 3 && busy >= 1 && ok + busy == 12,
            "ok {ok} busy {busy}"
        );
        assert_eq!(pool.stats().rejected, busy);
        assert_eq!(pool.stats().peak_running, 1);
        // once the queue drained, requests are admitted again
        assert!(pool
            .verify(&Secret::new("correct horse"), phc)
            .await
            .expect("admitted"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_caller_that_gives_up_frees_its_place() {
        let pool = HashPool::new(Hasher::new(16 * 1024, 2).expect("params"), 1, 0);
        let phc = pool.hash_now("correct horse").expect("hash");
        for _ in 0..3 {
            let _ = tokio::time::timeout(
                Duration::from_micros(1),
                pool.verify(&Secret::new("correct horse"), phc.clone()),
            )
            .await;
        }
        // the abandoned hash finishes in the background; then the single place is free again
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            match pool
                .verify(&Secret::new("correct horse"), phc.clone())
                .await
            {
                Ok(ok) => break assert!(ok),
                Err(Error::Busy) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(10)).await
                }
                Err(e) => panic!("{e:?}"),
            }
        }
        assert_eq!(pool.stats().memory_allocations, 1);
    }
}
