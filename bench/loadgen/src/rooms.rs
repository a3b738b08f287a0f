//! The `rooms` mode: room traffic across several instances of a server that share rooms
//! through a broadcast adapter (Redis), as `bench/scale_out.sh` runs it.
//!
//! Each room has one sender and `--members` members. Room r's sender connects to instance
//! r mod N; its members go round-robin to the `--spread` instances after that one, never to
//! the sender's own, so that every delivery crosses from one instance to another. The
//! members join first (`join` with the room's name, answered under `join` once the room's
//! emits from every instance reach the member); then each sender emits `say`
//! `{"room":"r<r>","msg":{"s":<seq>,"t":<µs>,..}}` in a loop, at most `--window` emits ahead
//! of the slowest member of its room, and the server sends `msg` under `room` to every
//! member. Counted at the members: deliveries per second and delivery latency in the
//! measured window, and over the whole run every delivery, the ones missing (an emit some
//! member never received) and the ones out of order (a sequence number not one past the
//! member's last).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio_tungstenite::tungstenite::Message;

use crate::{
    Cli, CpuMeter, DRAIN_TIMEOUT, Error, OPEN_TIMEOUT, Target, Ws, histogram, next_text,
    number_after, per_message, window,
};

/// How the rooms are laid out over the instances, and how far a sender may run ahead.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RoomShape {
    /// Rooms, each with one sender.
    pub(crate) rooms: u64,
    /// Members per room.
    pub(crate) members: u64,
    /// Instances a room's members are spread over (capped at N-1).
    pub(crate) spread: u64,
    /// Emits a sender may be ahead of the slowest member of its room.
    pub(crate) window: u64,
}

impl RoomShape {
    /// The instance, of `instances`, that room `room`'s sender connects to.
    fn sender_instance(room: u64, instances: u64) -> u64 {
        room % instances
    }

    /// The instance, of `instances`, that member `member` of room `room` connects to: one
    /// of the `spread` instances after the sender's, round-robin; the only one when there
    /// is one.
    fn member_instance(self, room: u64, member: u64, instances: u64) -> u64 {
        if instances == 1 {
            return 0;
        }
        let spread = self.spread.clamp(1, instances - 1);
        (Self::sender_instance(room, instances) + 1 + member % spread) % instances
    }

    /// How many instances a room's members are on.
    fn effective_spread(self, instances: u64) -> u64 {
        self.spread
            .clamp(1, instances.saturating_sub(1).max(1))
            .min(self.members)
    }
}

/// What one room's members have received, shared with its sender.
struct Room {
    /// The highest sequence number each member received.
    seen: Vec<AtomicU64>,
    /// Signalled on every delivery, for the sender waiting on its window.
    delivered: Notify,
    /// The emits the sender has sent.
    sent: AtomicU64,
}

impl Room {
    fn slowest(&self) -> u64 {
        self.seen
            .iter()
            .map(|s| s.load(Ordering::Relaxed))
            .min()
            .unwrap_or(0)
    }
}

/// What the members counted.
#[derive(Default)]
struct Counts {
    /// Deliveries in the measured window.
    in_window: AtomicU64,
    /// Every delivery of the run.
    total: AtomicU64,
    /// Deliveries whose sequence number was not one past the member's last.
    out_of_order: AtomicU64,
}

/// How long a sender waits for a delivery before it looks at the clock again.
const WINDOW_POLL: Duration = Duration::from_millis(50);

pub(crate) async fn rooms(
    cli: &Cli,
    targets: &[Target],
    shape: RoomShape,
    duration: f64,
    warmup: f64,
    redis_pid: Option<u32>,
) -> Result<(), Error> {
    let instances = targets.len() as u64;
    let protocol = cli.protocol;
    // Every connection, members first: (room, Some(member) or None for the sender).
    let permits = Arc::new(Semaphore::new(cli.open_concurrency.max(1)));
    let mut opening = Vec::new();
    for room in 0..shape.rooms {
        for member in (0..shape.members).map(Some).chain([None]) {
            let instance = match member {
                Some(m) => shape.member_instance(room, m, instances),
                None => RoomShape::sender_instance(room, instances),
            };
            let target = targets[instance as usize].clone();
            let permits = Arc::clone(&permits);
            opening.push(tokio::spawn(async move {
                let _permit = permits.acquire_owned().await;
                let mut ws = target.connect().await?;
                if member.is_some() {
                    join(&target, &mut ws, room).await?;
                }
                Ok::<_, Error>((room, member, ws))
            }));
        }
    }
    let mut members = Vec::new();
    let mut senders = Vec::new();
    for task in opening {
        let (room, member, ws) = task.await??;
        match member {
            Some(_) => members.push((room, ws)),
            None => senders.push((room, ws)),
        }
    }
    let rooms: Arc<Vec<Room>> = Arc::new(
        (0..shape.rooms)
            .map(|_| Room {
                seen: (0..shape.members).map(|_| AtomicU64::new(0)).collect(),
                delivered: Notify::new(),
                sent: AtomicU64::new(0),
            })
            .collect(),
    );
    let epoch = Instant::now();
    let (from, until) = window(warmup, duration);
    let stop = Arc::new(AtomicBool::new(false));
    let hist = Arc::new(Mutex::new(histogram()));
    let counts = Arc::new(Counts::default());
    let mut tasks = Vec::with_capacity(members.len());
    let mut next_member = vec![0usize; shape.rooms as usize];
    for (room, mut ws) in members {
        let slot = next_member[room as usize];
        next_member[room as usize] += 1;
        let (rooms, hist, counts) = (Arc::clone(&rooms), Arc::clone(&hist), Arc::clone(&counts));
        tasks.push(tokio::spawn(async move {
            let room = &rooms[room as usize];
            let mut last = 0;
            while let Some(text) = next_text(protocol, &mut ws).await {
                if !protocol.is_event(&text, "room") {
                    continue;
                }
                let (Some(seq), Some(sent_us)) = (
                    number_after(&text, r#""s":"#),
                    number_after(&text, r#""t":"#),
                ) else {
                    continue;
                };
                if seq != last + 1 {
                    counts.out_of_order.fetch_add(1, Ordering::Relaxed);
                }
                last = seq;
                // The highest received, not the last: a server that reorders must not hold
                // its sender back for an emit the member already has.
                room.seen[slot].fetch_max(seq, Ordering::Relaxed);
                room.delivered.notify_one();
                counts.total.fetch_add(1, Ordering::Relaxed);
                let now = Instant::now();
                if now >= from && now < until {
                    counts.in_window.fetch_add(1, Ordering::Relaxed);
                    let latency = (now - epoch).as_micros() as u64;
                    hist.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .saturating_record(latency.saturating_sub(sent_us));
                }
            }
        }));
    }
    let mut sending = Vec::with_capacity(senders.len());
    for (room_index, ws) in senders {
        let (rooms, stop) = (Arc::clone(&rooms), Arc::clone(&stop));
        let (mut sink, mut own) = ws.split();
        // A sender receives nothing but the protocol's housekeeping (Engine.IO pings): drain
        // it, and hand what needs an answer to the sending task, which owns the sink.
        let (answers_tx, mut answers) = mpsc::unbounded_channel();
        tasks.push(tokio::spawn(async move {
            while let Some(Ok(message)) = own.next().await {
                if let Message::Text(text) = message
                    && let Some(answer) = protocol.answer(&text)
                {
                    let _ = answers_tx.send(answer);
                }
            }
        }));
        sending.push(tokio::spawn(async move {
            let room = &rooms[room_index as usize];
            let mut seq = 0u64;
            'sending: while !stop.load(Ordering::Relaxed) {
                // Stay at most `window` emits ahead of the slowest member.
                while room.slowest() + shape.window <= seq {
                    if stop.load(Ordering::Relaxed) {
                        break 'sending;
                    }
                    let _ = tokio::time::timeout(WINDOW_POLL, room.delivered.notified()).await;
                }
                while let Ok(answer) = answers.try_recv() {
                    if sink.send(Message::text(answer)).await.is_err() {
                        break 'sending;
                    }
                }
                seq += 1;
                let t = epoch.elapsed().as_micros();
                let data = format!(
                    r#"{{"room":"r{room_index}","msg":{{"s":{seq},"t":{t},"text":"hello, gateway"}}}}"#
                );
                if sink
                    .send(Message::Text(protocol.encode("say", &data).into()))
                    .await
                    .is_err()
                {
                    break;
                }
                room.sent.store(seq, Ordering::Relaxed);
            }
            sink
        }));
    }
    tokio::time::sleep_until(from.into()).await;
    let cpu = CpuMeter::start(&cli.server_pid);
    let redis_cpu = CpuMeter::start(&Vec::from_iter(redis_pid));
    let own_cpu = CpuMeter::start(&[std::process::id()]);
    tokio::time::sleep_until(until.into()).await;
    let (cpu, redis_cpu, own_cpu) = (cpu.elapsed(), redis_cpu.elapsed(), own_cpu.elapsed());
    stop.store(true, Ordering::Relaxed);
    let count = counts.in_window.load(Ordering::Relaxed);
    let mut sinks = Vec::with_capacity(sending.len());
    for task in sending {
        sinks.push(task.await?);
    }
    // The emits still in flight reach every member before the connections close, so that
    // `total` is all the servers delivered and `missing` what they lost.
    let sent: u64 = rooms.iter().map(|r| r.sent.load(Ordering::Relaxed)).sum();
    let drain_until = Instant::now() + DRAIN_TIMEOUT;
    while Instant::now() < drain_until
        && counts.total.load(Ordering::Relaxed) < sent * shape.members
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let total = counts.total.load(Ordering::Relaxed);
    let out_of_order = counts.out_of_order.load(Ordering::Relaxed);
    let missing = (sent * shape.members).saturating_sub(total);
    for mut sink in sinks {
        let _ = sink.close().await;
    }
    for task in tasks {
        task.abort();
    }
    let hist = hist.lock().unwrap_or_else(PoisonError::into_inner).clone();
    let rate = count as f64 / duration;
    let (p50, p99) = (hist.value_at_quantile(0.5), hist.value_at_quantile(0.99));
    let cpu_per = per_message(cpu, count);
    let redis_per = per_message(redis_cpu, count);
    let own_per = per_message(own_cpu, count);
    let spread = shape.effective_spread(instances);
    let (room_count, members) = (shape.rooms, shape.members);
    println!(
        "rooms: {instances} instances, {room_count} rooms of {members} members on {spread} \
         instances each (senders elsewhere), {sent} emits sent, {rate:.0} deliveries/s, \
         delivery latency p50 {p50} µs, p99 {p99} µs, server CPU {cpu_per} µs per delivery \
         (all instances), Redis CPU {redis_per} µs and the load generator's {own_per} µs per \
         delivery, {total} deliveries in all, \
         {missing} missing, {out_of_order} out of order"
    );
    println!(
        "RESULT mode=rooms protocol={} instances={instances} rooms={room_count} \
         members={members} spread={spread} rate={rate:.0} p50_us={p50} p99_us={p99} \
         cpu_us={cpu_per} redis_cpu_us={redis_per} loadgen_cpu_us={own_per} sent={sent} \
         total={total} \
         missing={missing} out_of_order={out_of_order}",
        protocol.name()
    );
    Ok(())
}

/// Joins room `room` and waits for the server's `join` answer.
async fn join(target: &Target, ws: &mut Ws, room: u64) -> Result<(), Error> {
    let protocol = target.protocol;
    ws.send(Message::Text(
        protocol.encode("join", &format!(r#""r{room}""#)).into(),
    ))
    .await?;
    let answered = async {
        while let Some(text) = next_text(protocol, ws).await {
            if protocol.is_event(&text, "join") {
                return Ok(());
            }
            if protocol.is_event(&text, "exception") {
                return Err(format!("join refused by {}: {text}", target.server).into());
            }
        }
        Err(format!(
            "{} closed the connection before answering the join",
            target.server
        )
        .into())
    };
    tokio::time::timeout(OPEN_TIMEOUT, answered)
        .await
        .map_err(|_| format!("no answer to the join from {}", target.server))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(members: u64, spread: u64) -> RoomShape {
        RoomShape {
            rooms: 8,
            members,
            spread,
            window: 8,
        }
    }

    #[test]
    fn members_never_share_their_senders_instance() {
        for instances in 2..=5 {
            for spread in 1..=6 {
                let shape = shape(10, spread);
                for room in 0..shape.rooms {
                    let sender = RoomShape::sender_instance(room, instances);
                    let mut on = std::collections::BTreeSet::new();
                    for member in 0..shape.members {
                        let instance = shape.member_instance(room, member, instances);
                        assert_ne!(instance, sender, "{instances} instances, spread {spread}");
                        assert!(instance < instances);
                        on.insert(instance);
                    }
                    assert_eq!(on.len() as u64, shape.effective_spread(instances));
                }
            }
        }
    }

    #[test]
    fn four_instances_two_each_and_one_instance_alone() {
        let shape = shape(4, 2);
        // Room 3: its sender on instance 3, its members on 0, 1, 0, 1.
        let on: Vec<u64> = (0..4).map(|m| shape.member_instance(3, m, 4)).collect();
        assert_eq!(on, [0, 1, 0, 1]);
        assert_eq!(RoomShape::sender_instance(3, 4), 3);
        assert_eq!(shape.member_instance(3, 2, 1), 0);
        assert_eq!(shape.effective_spread(1), 1);
        assert_eq!(shape.effective_spread(2), 1);
    }
}
