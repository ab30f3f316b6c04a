//! Work that arrives together, done together. One task takes every request
//! waiting (up to a bound) and hands them to the work as one batch; while
//! the batch runs, new requests queue for the next. Alone, a request goes
//! straight through; under load batches grow with the load, so whatever a
//! batch costs once (the model's weights read, a commit's fsync) is paid
//! once per batch instead of once per request. As in text-embeddings-
//! inference, and as databases group commits.

use std::{future::Future, sync::Arc};

use tokio::sync::{Mutex, mpsc, oneshot};

#[derive(Debug, thiserror::Error)]
#[error("the batch worker has stopped")]
pub struct Stopped;

pub struct Batcher<I, O> {
    queue: mpsc::UnboundedSender<(I, oneshot::Sender<O>)>,
}

impl<I: Send + 'static, O: Send + 'static> Batcher<I, O> {
    /// Starts `workers` workers on the current runtime; they end when the
    /// batcher is dropped. A free worker takes up to `max` waiting inputs,
    /// in arrival order, and `work` returns one output for each, in the same
    /// order. More than one worker lets batches run side by side (one per
    /// core, say), each taking what queued while the others ran.
    pub fn start<W, F>(max: usize, workers: usize, work: W) -> Self
    where
        W: Fn(Vec<I>) -> F + Send + Sync + 'static,
        F: Future<Output = Vec<O>> + Send,
    {
        let (queue, waiting) = mpsc::unbounded_channel::<(I, oneshot::Sender<O>)>();
        let (waiting, work) = (Arc::new(Mutex::new(waiting)), Arc::new(work));
        for _ in 0..workers.max(1) {
            let (waiting, work) = (waiting.clone(), work.clone());
            tokio::spawn(async move {
                let mut batch = Vec::with_capacity(max);
                while waiting.lock().await.recv_many(&mut batch, max.max(1)).await > 0 {
                    let (inputs, replies): (Vec<I>, Vec<_>) = batch.drain(..).unzip();
                    for (reply, output) in replies.into_iter().zip(work(inputs).await) {
                        // A caller that gave up waiting has dropped its receiver.
                        let _ = reply.send(output);
                    }
                }
            });
        }
        Self { queue }
    }

    /// Queues `input` without waiting for it.
    pub fn enqueue(&self, input: I) -> Result<(), Stopped> {
        let (reply, _) = oneshot::channel();
        self.queue.send((input, reply)).map_err(|_| Stopped)
    }

    /// Queues `input` and waits for its batch to be done.
    pub async fn submit(&self, input: I) -> Result<O, Stopped> {
        let (reply, done) = oneshot::channel();
        self.queue.send((input, reply)).map_err(|_| Stopped)?;
        done.await.map_err(|_| Stopped)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::Batcher;

    #[tokio::test]
    async fn requests_waiting_together_form_one_batch_and_each_gets_its_own_answer() {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let seen = sizes.clone();
        let (gate, opened) = tokio::sync::oneshot::channel::<()>();
        let opened = Mutex::new(Some(opened));
        let doubler = Arc::new(Batcher::start(4, 1, move |inputs: Vec<u32>| {
            seen.lock().unwrap().push(inputs.len());
            // The first batch holds the worker until the rest are queued.
            let hold = opened.lock().unwrap().take();
            async move {
                if let Some(hold) = hold {
                    let _ = hold.await;
                }
                inputs.into_iter().map(|n| n * 2).collect()
            }
        }));
        let first = tokio::spawn({
            let doubler = doubler.clone();
            async move { doubler.submit(1).await.unwrap() }
        });
        while sizes.lock().unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
        // `join!` polls in order: all six are queued before the gate opens.
        let rest = futures_util::future::join_all((2..=7).map(|n| doubler.submit(n)));
        let (answers, _) = tokio::join!(rest, async { gate.send(()) });
        assert_eq!(first.await.unwrap(), 2);
        let answers: Vec<u32> = answers.into_iter().map(Result::unwrap).collect();
        assert_eq!(answers, [4, 6, 8, 10, 12, 14]);
        assert_eq!(*sizes.lock().unwrap(), [1, 4, 2], "one alone, then the six waiting in batches of at most four");
    }
}
