//! The bounded queue between a client's senders and its connection task: a `VecDeque` and
//! the task's waker under one mutex.
//!
//! A broadcast queues one frame per receiver, so this is the hottest path of a fan-out:
//! queueing costs one uncontended lock, a push and, only when the queue was empty, a wake-up
//! (a connection task woken once drains everything queued meanwhile); taking a frame costs
//! one lock and a pop. The queue allocates nothing until a frame arrives, so an idle client
//! holds one small allocation; it keeps what it grew to while the client lives.
//!
//! One receiver, any number of senders. The receiver sees the end once every sender is
//! gone and the queue is empty; senders see `Disconnected` once the receiver is gone, whose
//! drop also drops what it left queued.
//!
//! A receiver that has a faster way to the client may install a bypass: while the queue is
//! empty and the receiver holds nothing it took from it (it [`settle`](Receiver::settle)d),
//! a send goes through the bypass at once, under the lock, so that it keeps its place
//! among the values queued before and after it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

/// Why a value was not queued; the value comes back.
#[derive(Debug)]
pub(crate) enum TrySendError<T> {
    /// The queue holds its capacity.
    Full(T),
    /// The receiver is gone.
    Disconnected(T),
    /// The bypass dropped it.
    Dropped,
}

/// A queue holding at most `capacity` values (at least one).
pub(crate) fn bounded<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            waker: None,
            senders: 1,
            closed: false,
            bypass: None,
            busy: false,
        }),
        capacity: capacity.max(1),
    });
    (
        Sender {
            shared: Arc::clone(&shared),
        },
        Receiver { shared },
    )
}

struct Shared<T> {
    state: Mutex<State<T>>,
    capacity: usize,
}

struct State<T> {
    queue: VecDeque<T>,
    /// The receiver's task, registered when it found the queue empty; taken by the send
    /// that makes the queue non-empty (or by the last sender's drop).
    waker: Option<Waker>,
    senders: usize,
    /// The receiver is gone.
    closed: bool,
    /// Where a send goes while the queue is empty and the receiver is not `busy`; a value
    /// it hands back is queued.
    bypass: Option<Bypass<T>>,
    /// The receiver took a value and has not settled since.
    busy: bool,
}

/// A way past the queue: writes a value at once, drops it, or hands it back to be queued.
pub(crate) type Bypass<T> = Box<dyn Fn(T) -> Result<(), Bypassed<T>> + Send + Sync>;

/// What a [`Bypass`] did not write.
pub(crate) enum Bypassed<T> {
    /// Dropped (a volatile frame with no room for it).
    Dropped,
    /// To be queued.
    Back(T),
}

impl<T> Shared<T> {
    /// The state. A panic never happens while it is held (no user code runs under it), so
    /// a poisoned lock still guards a consistent queue.
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The sending end; cloning it adds a sender.
pub(crate) struct Sender<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Sender<T> {
    /// Queues `value` unless the queue is full or the receiver is gone.
    pub(crate) fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        let mut state = self.shared.lock();
        if state.closed {
            return Err(TrySendError::Disconnected(value));
        }
        let value = match &state.bypass {
            Some(bypass) if !state.busy && state.queue.is_empty() => match bypass(value) {
                Ok(()) => return Ok(()),
                Err(Bypassed::Dropped) => return Err(TrySendError::Dropped),
                Err(Bypassed::Back(value)) => value,
            },
            _ => value,
        };
        if state.queue.len() >= self.shared.capacity {
            return Err(TrySendError::Full(value));
        }
        state.queue.push_back(value);
        // The receiver sleeps only after it found the queue empty, so only the value that
        // makes it non-empty needs to wake it.
        let waker = if state.queue.len() == 1 {
            state.waker.take()
        } else {
            None
        };
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.senders -= 1;
        let waker = if state.senders == 0 {
            state.waker.take()
        } else {
            None
        };
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T> std::fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("capacity", &self.shared.capacity)
            .finish_non_exhaustive()
    }
}

/// The receiving end.
pub(crate) struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Receiver<T> {
    /// The next value if one is queued.
    pub(crate) fn try_recv(&mut self) -> Option<T> {
        let mut state = self.shared.lock();
        let value = state.queue.pop_front();
        state.busy |= value.is_some();
        value
    }

    /// Sends go through `bypass` from now on, while the queue is empty and the receiver
    /// settled.
    pub(crate) fn set_bypass(&mut self, bypass: Bypass<T>) {
        self.shared.lock().bypass = Some(bypass);
    }

    /// Everything taken was written: sends may take the bypass again once the queue is
    /// empty.
    pub(crate) fn settle(&mut self) {
        let mut state = self.shared.lock();
        if state.queue.is_empty() {
            state.busy = false;
        }
    }

    /// The next value; `None` once every sender is gone and nothing is left. While the
    /// queue is empty the task's waker stays registered, so polling again costs no clone.
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut state = self.shared.lock();
        if let Some(value) = state.queue.pop_front() {
            state.busy = true;
            return Poll::Ready(Some(value));
        }
        if state.senders == 0 {
            return Poll::Ready(None);
        }
        // Registered under the lock: a send after it sees the queue empty and wakes us.
        match &mut state.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.closed = true;
        // Dropped outside the lock: a value's drop may be anything.
        let left = std::mem::take(&mut state.queue);
        let waker = state.waker.take();
        let bypass = state.bypass.take();
        drop(state);
        drop(left);
        drop(waker);
        drop(bypass);
    }
}

impl<T> std::fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("capacity", &self.shared.capacity)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    use super::*;

    /// Counts its wake-ups.
    #[derive(Default)]
    struct Wakes(AtomicUsize);

    impl Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn waker() -> (Arc<Wakes>, Waker) {
        let wakes = Arc::new(Wakes::default());
        (Arc::clone(&wakes), Waker::from(wakes))
    }

    #[test]
    fn values_come_out_in_order_up_to_the_capacity() {
        let (tx, mut rx) = bounded(2);
        tx.try_send(1).unwrap();
        tx.try_send(2).unwrap();
        assert!(matches!(tx.try_send(3), Err(TrySendError::Full(3))));
        assert_eq!(rx.try_recv(), Some(1));
        tx.try_send(3).unwrap();
        assert_eq!(rx.try_recv(), Some(2));
        assert_eq!(rx.try_recv(), Some(3));
        assert_eq!(rx.try_recv(), None);
    }

    #[test]
    fn a_capacity_of_zero_holds_one() {
        let (tx, _rx) = bounded(0);
        tx.try_send(1).unwrap();
        assert!(matches!(tx.try_send(2), Err(TrySendError::Full(2))));
    }

    #[test]
    fn only_the_send_into_an_empty_queue_wakes_the_receiver() {
        let (tx, mut rx) = bounded(8);
        let (wakes, waker) = waker();
        let mut cx = Context::from_waker(&waker);
        assert!(rx.poll_recv(&mut cx).is_pending());
        tx.try_send(1).unwrap();
        tx.try_send(2).unwrap();
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
        assert_eq!(rx.poll_recv(&mut cx), Poll::Ready(Some(1)));
        assert_eq!(rx.try_recv(), Some(2));
        // Drained without sleeping: the next send finds no waker until the receiver sleeps.
        tx.try_send(3).unwrap();
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
        assert_eq!(rx.poll_recv(&mut cx), Poll::Ready(Some(3)));
        assert!(rx.poll_recv(&mut cx).is_pending());
        tx.try_send(4).unwrap();
        assert_eq!(wakes.0.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn the_receiver_sees_the_end_once_every_sender_is_gone() {
        let (tx, mut rx) = bounded(8);
        let other = tx.clone();
        let (wakes, waker) = waker();
        let mut cx = Context::from_waker(&waker);
        tx.try_send(1).unwrap();
        drop(tx);
        assert_eq!(rx.poll_recv(&mut cx), Poll::Ready(Some(1)));
        assert!(rx.poll_recv(&mut cx).is_pending());
        drop(other);
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
        assert_eq!(rx.poll_recv(&mut cx), Poll::Ready(None));
    }

    #[test]
    fn senders_see_the_receiver_gone_and_its_queue_is_dropped() {
        let (tx, rx) = bounded(8);
        let value = Arc::new(());
        tx.try_send(Arc::clone(&value)).unwrap();
        drop(rx);
        assert_eq!(Arc::strong_count(&value), 1);
        assert!(matches!(
            tx.try_send(Arc::clone(&value)),
            Err(TrySendError::Disconnected(_))
        ));
    }

    #[test]
    fn the_bypass_takes_sends_only_while_nothing_waits_before_them() {
        let (tx, mut rx) = bounded(8);
        let bypassed = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&bypassed);
        rx.set_bypass(Box::new(move |value: i32| {
            if value == 0 {
                return Err(Bypassed::Dropped);
            }
            if value < 0 {
                return Err(Bypassed::Back(value));
            }
            sink.lock().unwrap().push(value);
            Ok(())
        }));
        assert!(matches!(tx.try_send(0), Err(TrySendError::Dropped)));
        tx.try_send(1).unwrap();
        // Handed back: queued, and what follows it waits behind it.
        tx.try_send(-2).unwrap();
        tx.try_send(3).unwrap();
        assert_eq!(*bypassed.lock().unwrap(), [1]);
        assert_eq!(rx.try_recv(), Some(-2));
        // Taken but not written yet: the next send still queues behind it.
        tx.try_send(4).unwrap();
        assert_eq!(rx.try_recv(), Some(3));
        assert_eq!(rx.try_recv(), Some(4));
        tx.try_send(5).unwrap();
        assert_eq!(rx.try_recv(), Some(5));
        rx.settle();
        tx.try_send(6).unwrap();
        assert_eq!(*bypassed.lock().unwrap(), [1, 6]);
        assert_eq!(rx.try_recv(), None);
        // Gone with the receiver.
        drop(rx);
        assert!(matches!(tx.try_send(7), Err(TrySendError::Disconnected(7))));
    }

    #[tokio::test]
    async fn a_task_waiting_on_another_thread_gets_every_value() {
        let (tx, mut rx) = bounded(4);
        let sender = std::thread::spawn(move || {
            let mut sent = 0;
            while sent < 10_000 {
                match tx.try_send(sent) {
                    Ok(()) => sent += 1,
                    Err(TrySendError::Full(_)) => std::thread::yield_now(),
                    Err(TrySendError::Disconnected(_) | TrySendError::Dropped) => {
                        panic!("receiver gone")
                    }
                }
            }
        });
        let mut next = 0;
        while let Some(value) = std::future::poll_fn(|cx| rx.poll_recv(cx)).await {
            assert_eq!(value, next);
            next += 1;
        }
        assert_eq!(next, 10_000);
        sender.join().unwrap();
    }
}
