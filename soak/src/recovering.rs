//! `--recover`: churning clients that drop and come back with connection state recovery.
//!
//! Each joins one room before the traffic starts and then, while it flows, keeps dropping
//! its TCP connection abruptly (no close frame: a drop, which is recoverable; a close frame
//! is not) and reconnecting with `?pid=P&offset=O`, the session's private id and the last
//! offset it received, to the instance `--reconnect` picks. It must then receive every
//! message sent to its room exactly once and in each sender's order, like a member that
//! never left. A reconnection that gets a fresh session (`recovered: false`) is counted,
//! joins the room again, and whatever it missed counts as lost.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::tally::Seen;
use crate::{Rng, Say};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a connection attempt, or the wait for its `session` frame or the join's
/// reply, may take before the attempt counts as failed.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the run is, as the churning clients see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Traffic flows: drop after a while, come back.
    Churn,
    /// The traffic was sent: reconnect if away, then stay and receive what is left.
    Stay,
    /// The figures are being drawn: stop.
    Done,
}

/// The instance a churning client reconnects to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Reconnect {
    /// The one it dropped from.
    Same,
    /// The other one (recovery across instances, through Redis).
    Other,
    /// Either, at random.
    Any,
}

/// The sessions the churning clients opened when they came back, and how long recovery
/// took.
#[derive(Default)]
pub(crate) struct Sessions {
    /// Connections opened again after a drop.
    pub(crate) reconnects: u64,
    /// Of which recovered (`"recovered": true`).
    pub(crate) recovered: u64,
    /// Of which fresh: a new session, the old one's rooms and missed frames gone.
    pub(crate) fresh: u64,
    /// Attempts that failed (no connection, or no `session` frame in time), retried.
    pub(crate) failed: u64,
    /// From the start of a reconnection to its `session` frame with `recovered: true`.
    pub(crate) to_session_us: Vec<u64>,
    /// From the start of a recovered reconnection to the last frame of a message sent
    /// before it began (what it missed while away), or to the `session` frame when it
    /// missed nothing.
    pub(crate) to_replayed_us: Vec<u64>,
}

/// One connection of a churning client, for the latency figures.
struct Connection {
    /// When the reconnection that opened it began (none for the first connection), as an
    /// instant and in µs since the run began.
    began: Option<(Instant, u64)>,
    /// When its `session` frame said `recovered: true`.
    recovered_at: Option<Instant>,
    /// When the last frame of a message sent before `began` arrived on it.
    last_missed_at: Option<Instant>,
}

impl Connection {
    fn first() -> Self {
        Self {
            began: None,
            recovered_at: None,
            last_missed_at: None,
        }
    }
}

/// Why reading a connection stopped.
enum End {
    /// Its stay is over: drop it.
    Stay,
    /// The server closed it, or it broke.
    Lost,
    /// The run is over.
    Done,
}

/// A churning client with recovery.
pub(crate) struct Recovering {
    urls: Arc<[String]>,
    instance: usize,
    room: String,
    pid: String,
    offset: Option<String>,
    rng: Rng,
    reconnect: Reconnect,
    away: Duration,
    seen: Arc<Mutex<Seen>>,
    sessions: Arc<Mutex<Sessions>>,
    start: Instant,
}

/// What [`Recovering::join`] needs.
pub(crate) struct Setup {
    /// Every instance's URL (`ws://127.0.0.1:P/soak`).
    pub(crate) urls: Arc<[String]>,
    /// The instance it connects to first.
    pub(crate) instance: usize,
    /// The room it stays in.
    pub(crate) room: String,
    /// The seed of its stays' lengths and of `--reconnect any`.
    pub(crate) seed: u64,
    /// The instance it comes back to.
    pub(crate) reconnect: Reconnect,
    /// The longest it stays away after a drop (uniformly from none to this).
    pub(crate) away: Duration,
    /// Where it records what it receives.
    pub(crate) seen: Arc<Mutex<Seen>>,
    /// Shared by every churning client.
    pub(crate) sessions: Arc<Mutex<Sessions>>,
    /// When the run began (the messages' `sent_us` count from it).
    pub(crate) start: Instant,
}

impl Recovering {
    /// Connects, reads the session's private id and joins the room; the connection is
    /// returned for [`run`](Self::run).
    pub(crate) async fn join(setup: Setup) -> Result<(Self, Ws), String> {
        let url = &setup.urls[setup.instance];
        let (mut ws, (pid, _)) = tokio::time::timeout(ATTEMPT_TIMEOUT, open(url))
            .await
            .map_err(|_| format!("no session frame from {url} within 10 s"))??;
        let join = serde_json::json!({"event": "join", "data": setup.room}).to_string();
        ws.send(Message::text(join))
            .await
            .map_err(|err| format!("cannot send the join: {err}"))?;
        tokio::time::timeout(ATTEMPT_TIMEOUT, async {
            loop {
                match ws.next().await {
                    Some(Ok(Message::Text(text))) if text.contains(r#""event":"join""#) => {
                        return Ok(());
                    }
                    Some(Ok(_)) => {}
                    other => return Err(format!("the join failed: {other:?}")),
                }
            }
        })
        .await
        .map_err(|_| "no reply to the join within 10 s".to_owned())??;
        let client = Self {
            urls: setup.urls,
            instance: setup.instance,
            room: setup.room,
            pid,
            offset: None,
            rng: Rng(setup.seed),
            reconnect: setup.reconnect,
            away: setup.away,
            seen: setup.seen,
            sessions: setup.sessions,
            start: setup.start,
        };
        Ok((client, ws))
    }

    /// Reads, drops, comes back, until `phase` says [`Phase::Done`].
    pub(crate) async fn run(mut self, mut ws: Ws, mut phase: watch::Receiver<Phase>) {
        let mut connection = Connection::first();
        loop {
            let stay = Duration::from_millis(100 + self.rng.below(900) as u64);
            let end = self
                .read(&mut ws, Instant::now() + stay, &mut phase, &mut connection)
                .await;
            self.close_books(&connection);
            if let End::Done = end {
                return;
            }
            // Abrupt: the TCP connection goes without a close frame, whatever was in
            // flight to it unread.
            drop(ws);
            // Away a while, as a client whose network is gone is, while the traffic flows.
            let away = self.rng.below(self.away.as_millis() as usize + 1) as u64;
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(away)) => {}
                _ = phase.wait_for(|phase| *phase != Phase::Churn) => {}
            }
            match self.come_back(&mut phase).await {
                Some((again, opened)) => (ws, connection) = (again, opened),
                None => return,
            }
        }
    }

    async fn read(
        &mut self,
        ws: &mut Ws,
        until: Instant,
        phase: &mut watch::Receiver<Phase>,
        connection: &mut Connection,
    ) -> End {
        let until = tokio::time::Instant::from_std(until);
        loop {
            let churning = *phase.borrow() == Phase::Churn;
            tokio::select! {
                message = ws.next() => match message {
                    Some(Ok(Message::Text(text))) => self.on_text(&text, connection),
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => return End::Lost,
                },
                () = tokio::time::sleep_until(until), if churning => return End::Stay,
                changed = phase.changed() => {
                    if changed.is_err() || *phase.borrow() == Phase::Done {
                        return End::Done;
                    }
                }
            }
        }
    }

    fn on_text(&mut self, text: &str, connection: &mut Connection) {
        let Ok(frame) = serde_json::from_str::<Value>(text) else {
            return;
        };
        if frame["event"] != "said" {
            return;
        }
        let Ok(say) = serde_json::from_value::<Say>(frame["data"].clone()) else {
            return;
        };
        if let Some(offset) = frame["offset"].as_str() {
            self.offset = Some(offset.to_owned());
        }
        if let Some((_, began_us)) = connection.began
            && say.sent_us < began_us
        {
            connection.last_missed_at = Some(Instant::now());
        }
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record(say.sender, say.seq, None);
    }

    /// The latency to the last missed frame of a recovered connection that ends.
    fn close_books(&self, connection: &Connection) {
        let (Some((began, _)), Some(recovered_at)) = (connection.began, connection.recovered_at)
        else {
            return;
        };
        let last = connection.last_missed_at.unwrap_or(recovered_at);
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .to_replayed_us
            .push(last.duration_since(began).as_micros() as u64);
    }

    /// Reconnects to the instance `--reconnect` picks with `?pid=&offset=`, retrying a
    /// failed attempt; none when the run ends first.
    async fn come_back(&mut self, phase: &mut watch::Receiver<Phase>) -> Option<(Ws, Connection)> {
        loop {
            if *phase.borrow() == Phase::Done {
                return None;
            }
            let instances = self.urls.len();
            self.instance = match self.reconnect {
                Reconnect::Same => self.instance,
                Reconnect::Other => (self.instance + 1) % instances,
                Reconnect::Any => self.rng.below(instances),
            };
            let began = Instant::now();
            let began_us = self.start.elapsed().as_micros() as u64;
            let mut url = format!("{}?pid={}", self.urls[self.instance], self.pid);
            if let Some(offset) = &self.offset {
                url.push_str("&offset=");
                url.push_str(offset);
            }
            let attempt = tokio::time::timeout(ATTEMPT_TIMEOUT, open(&url)).await;
            let Ok(Ok((mut ws, (pid, recovered)))) = attempt else {
                self.sessions
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .failed += 1;
                // A pause before the next attempt, as a client's backoff would.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let now = Instant::now();
            {
                let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
                sessions.reconnects += 1;
                if recovered {
                    sessions.recovered += 1;
                    sessions
                        .to_session_us
                        .push(now.duration_since(began).as_micros() as u64);
                } else {
                    sessions.fresh += 1;
                }
            }
            if !recovered {
                // A new client in no room: join again; its reply is read with the rest.
                self.pid = pid;
                self.offset = None;
                let join = serde_json::json!({"event": "join", "data": self.room}).to_string();
                if ws.send(Message::text(join)).await.is_err() {
                    continue;
                }
            }
            let connection = Connection {
                began: Some((began, began_us)),
                recovered_at: recovered.then_some(now),
                last_missed_at: None,
            };
            return Some((ws, connection));
        }
    }
}

/// Connects to `url` and reads its first frame, the `session` frame: the session's private
/// id and whether it was recovered.
async fn open(url: &str) -> Result<(Ws, (String, bool)), String> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .map_err(|err| format!("cannot connect to {url}: {err}"))?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                let frame: Value = serde_json::from_str(&text)
                    .map_err(|err| format!("the first frame is not JSON ({err}): {text}"))?;
                let data = &frame["data"];
                return match (frame["event"].as_str(), data["pid"].as_str()) {
                    (Some("session"), Some(pid)) => {
                        let recovered = data["recovered"].as_bool() == Some(true);
                        Ok((ws, (pid.to_owned(), recovered)))
                    }
                    _ => Err(format!(
                        "the first frame is not a session frame (is recovery on?): {text}"
                    )),
                };
            }
            Some(Ok(_)) => {}
            other => return Err(format!("no session frame: {other:?}")),
        }
    }
}
