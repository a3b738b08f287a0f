//! Connection state recovery across instances: what a client that dropped from one instance
//! and came back on another presents ([`SessionClaim`]), what the instance that held its
//! session offers ([`SessionOffer`]), and how the frames it missed are cut between the two
//! ([`Stamp`]).
//!
//! The instance a client comes back to (the claimer) asks every other one for the session
//! ([`Adapter::claim_session`](super::Adapter::claim_session)); the one holding it checks the
//! claimer's handshake with its own authenticator and reserves the session
//! ([`LocalServer::offer_session`](super::LocalServer::offer_session)), saying what it had
//! received from each instance by then ([`SessionOffer::received`]). Once the claimer has
//! received as much (a frame the client got before it dropped must not reach it again,
//! live, from an instance that lags behind: after a Redis outage, say), it takes the client
//! in (its id, its rooms): from that moment it receives the client's live traffic. What it
//! had received until then from each instance, a [`Stamp`] per instance, goes back to the
//! holder with [`Adapter::take_session`](super::Adapter::take_session): the
//! holder waits until it has received as much, and hands over every frame the client missed
//! up to there ([`LocalServer::hand_over_session`](super::LocalServer::hand_over_session)).
//! Every frame reaches the client once: from the holder when the claimer had received it
//! before taking the client in, live otherwise.

use std::time::Duration;

use serde_json::value::RawValue;

use crate::client::{ClientId, Handshake};

/// A frame's place among the frames one instance recorded for connection state recovery:
/// the instance (`origin`, random for each gateway of each process) and its number there.
/// The frames of one origin reach every instance in the order of their numbers.
///
/// # Examples
///
/// ```
/// use ws_gateway_core::adapter::Stamp;
///
/// let stamp = Stamp::new(0xfeed, 7);
/// assert_eq!((stamp.origin, stamp.seq), (0xfeed, 7));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Stamp {
    /// The instance (gateway of a process) that sent the frame.
    pub origin: u64,
    /// The frame's number among that instance's.
    pub seq: u64,
}

impl Stamp {
    /// A frame of `origin`, numbered `seq` there.
    ///
    /// ```
    /// # use ws_gateway_core::adapter::Stamp;
    /// assert_eq!(Stamp::new(1, 2), Stamp::new(1, 2));
    /// ```
    pub fn new(origin: u64, seq: u64) -> Self {
        Self { origin, seq }
    }
}

/// What a client coming back presented, for the instance that may hold its session: the
/// session's private id, the last offset it received, and its handshake's URI and headers
/// (the holder authenticates them itself, so that only the session's owner gets it back).
///
/// # Examples
///
/// ```
/// use ws_gateway_core::adapter::SessionClaim;
///
/// let claim = SessionClaim::new("0a1b", Some("41".into()), "/chat?pid=0a1b&offset=41".into())
///     .header("authorization", "Bearer alice");
/// assert_eq!(claim.pid, "0a1b");
/// assert_eq!(claim.headers, [("authorization".to_owned(), "Bearer alice".to_owned())]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionClaim {
    /// The session's private id (`?pid=`).
    pub pid: String,
    /// The last offset the client received (`?offset=`), if any.
    pub offset: Option<String>,
    /// The handshake's request URI (path and query).
    pub uri: String,
    /// The handshake's headers that are text (a header that is not is left out).
    pub headers: Vec<(String, String)>,
    /// The handshake's Socket.IO `auth` payload ([`SocketIoAuth`](crate::SocketIoAuth)),
    /// as JSON text, if any.
    pub auth: Option<String>,
    /// How long the claiming instance has been recording frames: frames of an instance
    /// it never heard from that the holder recorded before then are ones it never got.
    pub recording_for: Duration,
}

impl SessionClaim {
    /// A claim of session `pid`, last offset `offset`, from a handshake to `uri`.
    ///
    /// ```
    /// # use ws_gateway_core::adapter::SessionClaim;
    /// let claim = SessionClaim::new("0a1b", None, "/chat?pid=0a1b".into());
    /// assert!(claim.offset.is_none() && claim.headers.is_empty());
    /// ```
    pub fn new(pid: &str, offset: Option<String>, uri: String) -> Self {
        Self {
            pid: pid.to_owned(),
            offset,
            uri,
            headers: Vec::new(),
            auth: None,
            recording_for: Duration::ZERO,
        }
    }

    /// With one more header.
    ///
    /// ```
    /// # use ws_gateway_core::adapter::SessionClaim;
    /// let claim = SessionClaim::new("p", None, "/".into()).header("x-user", "bob");
    /// assert_eq!(claim.headers.len(), 1);
    /// ```
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// With a Socket.IO `auth` payload (JSON text).
    ///
    /// ```
    /// # use ws_gateway_core::adapter::SessionClaim;
    /// let claim = SessionClaim::new("p", None, "/".into()).auth(r#"{"token":"t"}"#);
    /// assert_eq!(claim.auth.as_deref(), Some(r#"{"token":"t"}"#));
    /// ```
    #[must_use]
    pub fn auth(mut self, auth: &str) -> Self {
        self.auth = Some(auth.to_owned());
        self
    }

    /// With `recording_for` set.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use ws_gateway_core::adapter::SessionClaim;
    /// let claim = SessionClaim::new("p", None, "/".into()).recording_for(Duration::from_secs(3));
    /// assert_eq!(claim.recording_for, Duration::from_secs(3));
    /// ```
    #[must_use]
    pub fn recording_for(mut self, age: Duration) -> Self {
        self.recording_for = age;
        self
    }

    pub(crate) fn of(
        handshake: &Handshake,
        pid: &str,
        offset: Option<&str>,
        age: Duration,
    ) -> Self {
        let mut claim =
            Self::new(pid, offset.map(str::to_owned), handshake.uri.to_string()).recording_for(age);
        for (name, value) in &handshake.headers {
            if let Ok(value) = value.to_str() {
                claim
                    .headers
                    .push((name.as_str().to_owned(), value.to_owned()));
            }
        }
        if let Some(crate::SocketIoAuth(auth)) = handshake.extensions.get() {
            claim.auth = Some(auth.to_string());
        }
        claim
    }

    /// The handshake the claim describes, as the holder rebuilds it.
    pub(crate) fn handshake(&self) -> Option<Handshake> {
        let mut handshake = Handshake {
            uri: self.uri.parse().ok()?,
            ..Handshake::default()
        };
        for (name, value) in &self.headers {
            if let (Ok(name), Ok(value)) = (
                http::HeaderName::from_bytes(name.as_bytes()),
                http::HeaderValue::from_str(value),
            ) {
                handshake.headers.append(name, value);
            }
        }
        if let Some(auth) = &self.auth {
            let auth = serde_json::from_str(auth).ok()?;
            handshake.extensions.insert(crate::SocketIoAuth(auth));
        }
        Some(handshake)
    }
}

/// What an instance answers to a session claim
/// ([`LocalServer::offer_session`](super::LocalServer::offer_session)).
///
/// # Examples
///
/// ```
/// use ws_gateway_core::adapter::SessionAnswer;
///
/// assert!(matches!(SessionAnswer::NotHere, SessionAnswer::NotHere));
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum SessionAnswer {
    /// The session is here, reserved for the claim.
    Offered(SessionOffer),
    /// The session is here but its client is still connected here, or it is being taken in
    /// here by an earlier attempt of the client's: ask again shortly.
    Busy,
    /// No such session here (or not for this claimer).
    NotHere,
}

/// A session another instance holds and reserved for the claimer: its client's id and
/// rooms, and which instance it is (`holder`, the adapter's own id for it).
///
/// # Examples
///
/// ```
/// use ws_gateway_core::adapter::SessionOffer;
///
/// let id = "00000000000000aa".parse().unwrap();
/// let offer = SessionOffer::new(id, vec!["lobby".into()]).holder(7);
/// assert_eq!((offer.client, offer.holder), (id, 7));
/// assert!(offer.state.is_empty());
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SessionOffer {
    /// The client's id, kept across the move.
    pub client: ClientId,
    /// The rooms it was in when it dropped.
    pub rooms: Vec<String>,
    /// Which instance holds the session, as the adapter names instances.
    pub holder: u64,
    /// Its per-connection state of the types [`Recovery::carry`](crate::Recovery::carry)
    /// names, each as JSON under its type's name.
    pub state: Vec<(String, Box<RawValue>)>,
    /// The holder's reservation of the session for this offer, to take it with.
    pub token: u64,
    /// What the holder had received from each instance when it offered the session: the
    /// claimer takes the client in once it has received as much, so that a frame the client
    /// got from the holder before it dropped does not reach it again, live, on the claimer.
    pub received: Vec<Stamp>,
}

impl SessionOffer {
    /// An offer of client `client`'s session, in `rooms`.
    ///
    /// ```
    /// # use ws_gateway_core::adapter::SessionOffer;
    /// let offer = SessionOffer::new("00000000000000aa".parse().unwrap(), Vec::new());
    /// assert_eq!(offer.holder, 0);
    /// ```
    pub fn new(client: ClientId, rooms: Vec<String>) -> Self {
        Self {
            client,
            rooms,
            holder: 0,
            state: Vec::new(),
            token: 0,
            received: Vec::new(),
        }
    }

    /// The same offer, from instance `holder`.
    ///
    /// ```
    /// # use ws_gateway_core::adapter::SessionOffer;
    /// let offer = SessionOffer::new("00000000000000aa".parse().unwrap(), Vec::new()).holder(3);
    /// assert_eq!(offer.holder, 3);
    /// ```
    #[must_use]
    pub fn holder(mut self, holder: u64) -> Self {
        self.holder = holder;
        self
    }

    /// The same offer, carrying this per-connection state.
    ///
    /// ```
    /// # use ws_gateway_core::adapter::SessionOffer;
    /// let nick = serde_json::value::to_raw_value("Al").unwrap();
    /// let offer = SessionOffer::new("00000000000000aa".parse().unwrap(), Vec::new())
    ///     .state(vec![("app::Nick".into(), nick)]);
    /// assert_eq!(offer.state[0].1.get(), r#""Al""#);
    /// ```
    #[must_use]
    pub fn state(mut self, state: Vec<(String, Box<RawValue>)>) -> Self {
        self.state = state;
        self
    }

    /// The same offer, under the holder's reservation `token`.
    ///
    /// ```
    /// # use ws_gateway_core::adapter::SessionOffer;
    /// let offer = SessionOffer::new("00000000000000aa".parse().unwrap(), Vec::new()).token(5);
    /// assert_eq!(offer.token, 5);
    /// ```
    #[must_use]
    pub fn token(mut self, token: u64) -> Self {
        self.token = token;
        self
    }

    /// The same offer, made when the holder had received `received` from each instance.
    ///
    /// ```
    /// # use ws_gateway_core::adapter::{SessionOffer, Stamp};
    /// let offer = SessionOffer::new("00000000000000aa".parse().unwrap(), Vec::new())
    ///     .received(vec![Stamp::new(7, 41)]);
    /// assert_eq!(offer.received, [Stamp::new(7, 41)]);
    /// ```
    #[must_use]
    pub fn received(mut self, received: Vec<Stamp>) -> Self {
        self.received = received;
        self
    }
}
