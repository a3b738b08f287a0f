//! The JSON wire format of the default transport, NestJS's `WsAdapter` envelope:
//! text frames `{"event": string, "data": any}`, plus an optional `"id"` that a reply echoes.

use std::any::Any;
use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::WsException;
use crate::request::Request;

/// The field [`Frame::with_ack`] appends, before the number.
const ACK_KEY: &str = r#","ack":"#;

/// Where a frame's `,"ack":N` field starts, and `N`, if the frame asks for an
/// acknowledgement.
///
/// The field is written last, after the data: a `,"ack":` followed by digits and the
/// envelope's closing brace can only be it (inside a string the quotes would be escaped; a
/// value inside the data would be followed by its own closing bracket). Read backwards from
/// the end, without searching the frame: Socket.IO strips it for every receiver of a room's
/// acknowledgement.
fn ack_field(text: &str) -> Option<(usize, u64)> {
    let head = text.strip_suffix('}')?;
    let digits = head.bytes().rev().take_while(u8::is_ascii_digit).count();
    let (key, number) = head.split_at(head.len() - digits);
    let at = key.strip_suffix(ACK_KEY)?.len();
    Some((at, number.parse().ok()?))
}

/// The event name under which errors reach the client, as in NestJS.
///
/// ```
/// use ws_gateway_core::{WsException, frame::{EXCEPTION_EVENT, exception_frame}};
///
/// let frame = exception_frame(&WsException::new("no"), None);
/// assert!(frame.as_str().starts_with(&format!(r#"{{"event":"{EXCEPTION_EVENT}""#)));
/// ```
pub const EXCEPTION_EVENT: &str = "exception";

/// An encoded outgoing text frame: UTF-8 JSON, cheap to clone (a broadcast encodes once and
/// hands the same bytes to every receiver).
///
/// A frame whose data holds byte strings also keeps them as binary attachments
/// ([`binary`](Self::binary)), which Socket.IO sends as such; its JSON text writes them as
/// arrays of numbers, as serde_json does. A [`volatile`](Self::volatile) frame is dropped
/// for a client whose outbound queue is full, instead of disconnecting it.
///
/// # Examples
///
/// ```
/// let frame = ws_gateway_core::Frame::event("greeting", &"hello").unwrap();
/// assert_eq!(frame.as_str(), r#"{"event":"greeting","data":"hello"}"#);
/// ```
#[derive(Clone)]
pub struct Frame {
    text: Bytes,
    /// Rare, so kept out of line: a frame is one `Bytes` and a pointer.
    extra: Option<Arc<Extra>>,
}

/// Frames are equal when they carry the same text, attachments and flags: a
/// [shared](Frame::shared) frame equals the frame it was made from.
impl PartialEq for Frame {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
            && self.binary() == other.binary()
            && self.is_volatile() == other.is_volatile()
    }
}

impl Eq for Frame {}

/// What only some frames have.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Extra {
    binary: Option<BinaryFrame>,
    volatile: bool,
    /// The number [`Frame::with_ack`] gave the frame, so that [`Frame::ack`] need not read
    /// the text for every receiver.
    ack: Option<u64>,
    /// A transport's own encoding of a [shared](Frame::shared) frame.
    prepared: Prepared,
}

/// The slot of [`Frame::prepared`]: filled by the first receiver that asks, read by the
/// others. Not part of the frame's value: a changed copy (another flag, another text)
/// starts empty, and frames compare equal whatever their slots hold.
#[derive(Default)]
struct Prepared(OnceLock<Box<dyn Any + Send + Sync>>);

impl Clone for Prepared {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl PartialEq for Prepared {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Prepared {}

impl fmt::Debug for Prepared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "Prepared"
        } else {
            "Unprepared"
        })
    }
}

/// A frame with binary attachments, as a transport that has them sends it: the frame's
/// JSON with each byte string written as a placeholder `{"_placeholder":true,"num":N}`,
/// and the attachments in the order of their numbers.
///
/// # Examples
///
/// ```
/// let frame = ws_gateway_core::Frame::event("file", &bytes::Bytes::from_static(b"\x01\x02")).unwrap();
/// assert_eq!(frame.as_str(), r#"{"event":"file","data":[1,2]}"#);
/// let binary = frame.binary().unwrap();
/// assert_eq!(binary.as_str(), r#"{"event":"file","data":{"_placeholder":true,"num":0}}"#);
/// assert_eq!(&binary.attachments()[0][..], b"\x01\x02");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BinaryFrame {
    text: Bytes,
    attachments: Vec<Bytes>,
}

impl BinaryFrame {
    /// The frame's JSON text, placeholders for the attachments.
    pub fn as_str(&self) -> &str {
        // Every constructor checks or writes UTF-8.
        std::str::from_utf8(&self.text).unwrap_or_default()
    }

    /// The frame's JSON text as bytes, without copying.
    pub fn as_bytes(&self) -> &Bytes {
        &self.text
    }

    /// The attachments, in the order of their placeholders' numbers.
    pub fn attachments(&self) -> &[Bytes] {
        &self.attachments
    }
}

/// Encodes a frame written by `write`, which collects the byte strings it meets as
/// attachments (see [`crate::args::write_json`]). Without any, that is the frame; with
/// some, its JSON text is derived from the one with placeholders, each placeholder written
/// as its bytes' array of numbers.
pub(crate) fn encode(
    capacity: usize,
    write: impl FnOnce(&mut Vec<u8>, &mut Vec<Bytes>) -> Result<(), serde_json::Error>,
) -> Result<Frame, serde_json::Error> {
    let mut buf = Vec::with_capacity(capacity);
    let mut attachments = Vec::new();
    write(&mut buf, &mut attachments)?;
    if attachments.is_empty() {
        return Ok(Frame::from_json(buf));
    }
    let text: &RawValue = serde_json::from_slice(&buf)?;
    let plain = crate::args::inline(text, &attachments)?;
    Ok(Frame {
        text: Bytes::from(plain),
        extra: Some(Arc::new(Extra {
            binary: Some(BinaryFrame {
                text: Bytes::from(buf),
                attachments,
            }),
            volatile: false,
            ack: None,
            prepared: Prepared::default(),
        })),
    })
}

impl Frame {
    /// Encodes `{"event": event, "data": data}`.
    ///
    /// # Errors
    ///
    /// The error of `data`'s `Serialize` implementation, e.g. a map with non-string keys.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use ws_gateway_core::Frame;
    ///
    /// let frame = Frame::event("tick", &[1, 2]).unwrap();
    /// assert_eq!(frame.as_str(), r#"{"event":"tick","data":[1,2]}"#);
    /// // JSON object keys must be strings.
    /// let bad: HashMap<Vec<u8>, u8> = HashMap::from([(vec![1], 1)]);
    /// assert!(Frame::event("tick", &bad).is_err());
    /// ```
    pub fn event<T: serde::Serialize + ?Sized>(
        event: &str,
        data: &T,
    ) -> Result<Self, serde_json::Error> {
        encode(64, |buf, attachments| {
            write_head(buf, event)?;
            crate::args::write_json(buf, data, attachments)?;
            buf.push(b'}');
            Ok(())
        })
    }

    /// Encodes an event with several arguments, `{"event": event, "args": [..]}`: `args`
    /// is a tuple, an array, a `Vec`, [`Args`](crate::Args) or
    /// [`RawArgs`](crate::RawArgs). Socket.IO clients receive the arguments spread
    /// (`socket.on(event, (a, b) => ..)`), plain WebSocket clients the `args` array.
    ///
    /// # Errors
    ///
    /// The error of `args`' `Serialize` implementation, or `args` is not a sequence.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::Frame;
    ///
    /// let frame = Frame::args("move", &("north", 3)).unwrap();
    /// assert_eq!(frame.as_str(), r#"{"event":"move","args":["north",3]}"#);
    /// assert!(Frame::args("move", &"north").is_err());
    /// ```
    pub fn args<T: serde::Serialize + ?Sized>(
        event: &str,
        args: &T,
    ) -> Result<Self, serde_json::Error> {
        encode(64, |buf, attachments| {
            write_args_head(buf, event)?;
            let at = buf.len();
            crate::args::write_json(buf, args, attachments)?;
            if buf.get(at) != Some(&b'[') {
                return Err(serde::ser::Error::custom(
                    "the arguments must serialize as a sequence: a tuple, an array or a `Vec`",
                ));
            }
            buf.push(b'}');
            Ok(())
        })
    }

    /// The same frame, volatile: dropped for a client whose outbound queue is full (counted
    /// in `gateway_messages_dropped_total`) instead of disconnecting the client.
    ///
    /// # Examples
    ///
    /// ```
    /// let frame = ws_gateway_core::Frame::event("pos", &[1, 2]).unwrap();
    /// assert!(!frame.is_volatile());
    /// assert!(frame.volatile().is_volatile());
    /// ```
    #[must_use]
    pub fn volatile(mut self) -> Self {
        Arc::make_mut(self.extra.get_or_insert_with(Arc::default)).volatile = true;
        self
    }

    /// Whether the frame is [`volatile`](Self::volatile).
    pub fn is_volatile(&self) -> bool {
        self.extra.as_ref().is_some_and(|extra| extra.volatile)
    }

    /// The same frame, about to be cloned for many receivers: its clones share one slot
    /// for [`prepared`](Self::prepared), so that a transport with its own encoding
    /// (Socket.IO) encodes it once rather than once per receiver. A room's emits and
    /// broadcasts are shared; a frame for one client need not be.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::Frame;
    ///
    /// let frame = Frame::event("tick", &1).unwrap();
    /// assert!(frame.prepared(|f| f.as_str().len()).is_none());
    /// let shared = frame.clone().shared();
    /// assert_eq!(shared.prepared(|f| f.as_str().len()), Some(&25));
    /// assert_eq!(shared, frame);
    /// ```
    #[must_use]
    pub fn shared(mut self) -> Self {
        self.extra.get_or_insert_with(Arc::default);
        self
    }

    /// A transport's own encoding of a [shared](Self::shared) frame: made by `prepare` for
    /// the first receiver that asks, and the same value for every other clone of the frame.
    /// `None` for a frame that is not shared, or whose slot holds another type (another
    /// transport's encoding): the caller then encodes the frame itself.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::Frame;
    ///
    /// let frame = Frame::event("tick", &1).unwrap().shared();
    /// let receiver = frame.clone();
    /// assert_eq!(frame.prepared(|f| f.as_str().to_uppercase()).unwrap(), r#"{"EVENT":"TICK","DATA":1}"#);
    /// // Already made: `prepare` is not called again.
    /// assert_eq!(receiver.prepared::<String>(|_| unreachable!()).unwrap(), r#"{"EVENT":"TICK","DATA":1}"#);
    /// assert!(receiver.prepared(|_| 7u8).is_none());
    /// ```
    pub fn prepared<T: Send + Sync + 'static>(
        &self,
        prepare: impl FnOnce(&Self) -> T,
    ) -> Option<&T> {
        let slot = &self.extra.as_ref()?.prepared.0;
        slot.get_or_init(|| Box::new(prepare(self))).downcast_ref()
    }

    /// The frame with its binary attachments, if its data holds byte strings.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::Frame;
    ///
    /// assert!(Frame::event("e", &[1, 2]).unwrap().binary().is_none());
    /// let file = Frame::event("e", &bytes::Bytes::from_static(&[1, 2])).unwrap();
    /// assert_eq!(file.binary().unwrap().attachments().len(), 1);
    /// ```
    pub fn binary(&self) -> Option<&BinaryFrame> {
        self.extra.as_ref().and_then(|extra| extra.binary.as_ref())
    }

    /// The same frame with this binary form (JSON text with placeholders, and the
    /// attachments), e.g. after both crossed a broadcast adapter.
    ///
    /// # Errors
    ///
    /// The text is not UTF-8.
    ///
    /// # Examples
    ///
    /// ```
    /// use bytes::Bytes;
    /// use ws_gateway_core::Frame;
    ///
    /// let frame = Frame::event("file", &Bytes::from_static(b"\x07")).unwrap();
    /// let binary = frame.binary().unwrap();
    /// let copy = Frame::from_encoded(frame.as_bytes().clone())
    ///     .unwrap()
    ///     .with_binary(binary.as_bytes().clone(), binary.attachments().to_vec())
    ///     .unwrap();
    /// assert_eq!(copy, frame);
    /// ```
    pub fn with_binary(
        mut self,
        text: Bytes,
        attachments: Vec<Bytes>,
    ) -> Result<Self, std::str::Utf8Error> {
        std::str::from_utf8(&text)?;
        let extra = Arc::make_mut(self.extra.get_or_insert_with(Arc::default));
        extra.binary = Some(BinaryFrame { text, attachments });
        // An encoding of the frame without them is stale.
        extra.prepared = Prepared::default();
        Ok(self)
    }

    /// The frame with its texts replaced by `f` of each: flags kept.
    fn map_texts(&self, f: impl Fn(&str) -> Vec<u8>) -> Self {
        Self {
            text: Bytes::from(f(self.as_str())),
            extra: self.extra.as_ref().map(|extra| {
                Arc::new(Extra {
                    binary: extra.binary.as_ref().map(|binary| BinaryFrame {
                        text: Bytes::from(f(binary.as_str())),
                        attachments: binary.attachments.clone(),
                    }),
                    volatile: extra.volatile,
                    ack: None,
                    prepared: Prepared::default(),
                })
            }),
        }
    }

    /// The same frame asking for an acknowledgement: `{"event":..,"data":..,"ack":N}`, the
    /// `ack` field last. The client answers `{"ack":N,"data":..}`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::Frame;
    ///
    /// let frame = Frame::event("question", &"tea?").unwrap().with_ack(7);
    /// assert_eq!(frame.as_str(), r#"{"event":"question","data":"tea?","ack":7}"#);
    /// assert_eq!(frame.ack(), Some(7));
    /// ```
    #[must_use]
    pub fn with_ack(&self, ack: u64) -> Self {
        let mut asked = self.map_texts(|text| {
            let text = text.trim_end();
            let head = text.strip_suffix('}').unwrap_or(text);
            let mut buf = Vec::with_capacity(head.len() + 28);
            buf.extend_from_slice(head.as_bytes());
            buf.extend_from_slice(br#","ack":"#);
            buf.extend_from_slice(itoa::Buffer::new().format(ack).as_bytes());
            buf.push(b'}');
            buf
        });
        // Made here, so not shared with another frame: no copy.
        Arc::make_mut(asked.extra.get_or_insert_with(Arc::default)).ack = Some(ack);
        asked
    }

    /// The same frame with its recovery offset (see [`Recovery`](crate::Recovery)):
    /// `{"event":..,"data":..,"offset":"O"}`, the `offset` field last.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::Frame;
    ///
    /// let frame = Frame::event("message", &"hi").unwrap().with_offset("42");
    /// assert_eq!(frame.as_str(), r#"{"event":"message","data":"hi","offset":"42"}"#);
    /// ```
    #[must_use]
    pub fn with_offset(&self, offset: &str) -> Self {
        self.map_texts(|text| {
            let text = text.trim_end();
            let head = text.strip_suffix('}').unwrap_or(text);
            let mut buf = Vec::with_capacity(head.len() + offset.len() + 13);
            buf.extend_from_slice(head.as_bytes());
            buf.extend_from_slice(br#","offset":"#);
            // An offset is the recorder's own (digits); encoded as a JSON string all the same.
            let _ = serde_json::to_writer(&mut buf, offset);
            buf.push(b'}');
            buf
        })
    }

    /// The frame without the offset [`with_offset`](Self::with_offset) gave it (as it was
    /// before), for another recorder to give it its own.
    pub(crate) fn without_offset(&self) -> Self {
        self.map_texts(|text| {
            let text = text.trim_end();
            match text.rfind(r#","offset":""#) {
                Some(at) if text[at..].ends_with("\"}") => {
                    let mut buf = Vec::with_capacity(at + 1);
                    buf.extend_from_slice(&text.as_bytes()[..at]);
                    buf.push(b'}');
                    buf
                }
                _ => text.as_bytes().to_vec(),
            }
        })
    }

    /// The acknowledgement number the frame asks under, if it asks for one (see
    /// [`with_ack`](Self::with_ack)); read from the end of the frame, without parsing it.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::Frame;
    ///
    /// assert_eq!(Frame::event("e", &1).unwrap().ack(), None);
    /// // An `ack` inside the data is not the frame's.
    /// let data = serde_json::json!({"ack": 3});
    /// assert_eq!(Frame::event("e", &data).unwrap().ack(), None);
    /// assert_eq!(Frame::event("e", &data).unwrap().with_ack(4).ack(), Some(4));
    /// ```
    pub fn ack(&self) -> Option<u64> {
        if let Some(ack) = self.extra.as_ref().and_then(|extra| extra.ack) {
            return Some(ack);
        }
        ack_field(self.as_str()).map(|(_, ack)| ack)
    }

    /// The frame without its `ack` field (see [`with_ack`](Self::with_ack)): what a
    /// transport with acknowledgements of its own (Socket.IO) sends.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::Frame;
    ///
    /// let plain = Frame::event("e", &[1]).unwrap();
    /// assert_eq!(plain.with_ack(9).without_ack(), plain);
    /// ```
    #[must_use]
    pub fn without_ack(&self) -> Self {
        if ack_field(self.as_str()).is_none() {
            return self.clone();
        }
        self.map_texts(|text| match ack_field(text) {
            Some((at, _)) => {
                let mut buf = Vec::with_capacity(at + 1);
                buf.extend_from_slice(&text.as_bytes()[..at]);
                buf.push(b'}');
                buf
            }
            None => text.as_bytes().to_vec(),
        })
    }

    /// The same frame with its `data` replaced by `f(data)`; event and id are kept. A frame
    /// that is not an envelope is returned unchanged. The mapped frame has no binary
    /// attachments: `f` sees byte strings as arrays of numbers.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::Frame;
    ///
    /// let frame = Frame::event("n", &1).unwrap().map_data(|n| serde_json::json!({"value": n}));
    /// assert_eq!(frame.as_str(), r#"{"event":"n","data":{"value":1}}"#);
    /// ```
    #[must_use]
    pub fn map_data(self, f: impl FnOnce(serde_json::Value) -> serde_json::Value) -> Self {
        #[derive(Deserialize)]
        struct Envelope<'a> {
            #[serde(borrow)]
            event: Cow<'a, str>,
            #[serde(default)]
            data: serde_json::Value,
            #[serde(borrow, default)]
            id: Option<&'a RawValue>,
        }
        let Ok(envelope) = serde_json::from_str::<Envelope<'_>>(self.as_str()) else {
            return self;
        };
        let mut buf = Vec::with_capacity(self.text.len() + 32);
        if write_head(&mut buf, &envelope.event).is_err()
            || serde_json::to_writer(&mut buf, &f(envelope.data)).is_err()
        {
            return self;
        }
        write_tail(&mut buf, envelope.id);
        let frame = Self::from_json(buf);
        if self.is_volatile() {
            frame.volatile()
        } else {
            frame
        }
    }

    /// A frame from bytes that [`as_bytes`](Self::as_bytes) returned, e.g. after they
    /// crossed a broadcast adapter. The bytes are not parsed again, only checked to be
    /// UTF-8.
    ///
    /// # Errors
    ///
    /// The bytes are not UTF-8.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::Frame;
    ///
    /// let frame = Frame::event("tick", &1).unwrap();
    /// let copy = Frame::from_encoded(frame.as_bytes().clone()).unwrap();
    /// assert_eq!(copy, frame);
    /// assert!(Frame::from_encoded(bytes::Bytes::from_static(b"\xff")).is_err());
    /// ```
    pub fn from_encoded(bytes: Bytes) -> Result<Self, std::str::Utf8Error> {
        std::str::from_utf8(&bytes)?;
        Ok(Self {
            text: bytes,
            extra: None,
        })
    }

    /// Recovery's first frame, `{"event":"session","data":{"pid":P,"recovered":R}}`; `pid` is
    /// the recorder's own hex digits, written as they are.
    pub(crate) fn session(pid: &str, recovered: bool) -> Self {
        debug_assert!(pid.bytes().all(|b| b.is_ascii_hexdigit()));
        Self::from_json(
            format!(r#"{{"event":"session","data":{{"pid":"{pid}","recovered":{recovered}}}}}"#)
                .into_bytes(),
        )
    }

    /// A frame made of JSON text the caller already encoded.
    #[inline]
    pub(crate) fn from_json(json: Vec<u8>) -> Self {
        Self {
            text: Bytes::from(json),
            extra: None,
        }
    }

    /// The frame's JSON text.
    ///
    /// ```
    /// assert_eq!(ws_gateway_core::Frame::event("a", &()).unwrap().as_str(), r#"{"event":"a","data":null}"#);
    /// ```
    pub fn as_str(&self) -> &str {
        // Every constructor writes serde_json output, which is UTF-8.
        std::str::from_utf8(&self.text).unwrap_or_default()
    }

    /// The frame's bytes (UTF-8 JSON), without copying.
    ///
    /// ```
    /// let frame = ws_gateway_core::Frame::event("a", &1).unwrap();
    /// assert_eq!(&frame.as_bytes()[..], frame.as_str().as_bytes());
    /// ```
    pub fn as_bytes(&self) -> &Bytes {
        &self.text
    }

    /// The frame's bytes (UTF-8 JSON), without copying.
    ///
    /// ```
    /// let bytes = ws_gateway_core::Frame::event("a", &1).unwrap().into_bytes();
    /// assert_eq!(&bytes[..], br#"{"event":"a","data":1}"#);
    /// ```
    pub fn into_bytes(self) -> Bytes {
        self.text
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut f = f.debug_tuple("Frame");
        f.field(&self.as_str());
        if let Some(binary) = self.binary() {
            f.field(&format_args!("{} attachments", binary.attachments.len()));
        }
        if self.is_volatile() {
            f.field(&format_args!("volatile"));
        }
        f.finish()
    }
}

/// Writes `{"event":<event>,"data":` into `buf`.
pub(crate) fn write_head(buf: &mut Vec<u8>, event: &str) -> Result<(), serde_json::Error> {
    buf.extend_from_slice(br#"{"event":"#);
    serde_json::to_writer(&mut *buf, event)?;
    buf.extend_from_slice(br#","data":"#);
    Ok(())
}

/// Writes `{"event":<event>,"args":` into `buf`.
pub(crate) fn write_args_head(buf: &mut Vec<u8>, event: &str) -> Result<(), serde_json::Error> {
    buf.extend_from_slice(br#"{"event":"#);
    serde_json::to_writer(&mut *buf, event)?;
    buf.extend_from_slice(br#","args":"#);
    Ok(())
}

/// Closes an envelope started by [`write_head`] (or a serialized `WsResponse`, whose
/// closing brace the caller removed), adding the request's `id` when it had one.
pub(crate) fn write_tail(buf: &mut Vec<u8>, id: Option<&RawValue>) {
    if let Some(id) = id {
        buf.extend_from_slice(br#","id":"#);
        buf.extend_from_slice(id.get().as_bytes());
    }
    buf.push(b'}');
}

#[derive(Deserialize)]
struct RawFrame<'a> {
    #[serde(borrow, default)]
    event: Option<EventName<'a>>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    ack: Option<&'a RawValue>,
    #[serde(borrow, default)]
    args: Option<&'a RawValue>,
}

/// The `event` field, read in the one pass over the frame: borrowed from the text when it
/// has no escapes (`Cow`'s own `Deserialize` always allocates), or whatever else it was.
enum EventName<'a> {
    Name(Cow<'a, str>),
    NotString,
}

impl<'de: 'a, 'a> Deserialize<'de> for EventName<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit<'a>(std::marker::PhantomData<&'a ()>);

        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visit<'a> {
            type Value = EventName<'a>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an event name")
            }

            fn visit_borrowed_str<E>(self, name: &'de str) -> Result<Self::Value, E> {
                Ok(EventName::Name(Cow::Borrowed(name)))
            }

            fn visit_str<E>(self, name: &str) -> Result<Self::Value, E> {
                Ok(EventName::Name(Cow::Owned(name.to_owned())))
            }

            fn visit_string<E>(self, name: String) -> Result<Self::Value, E> {
                Ok(EventName::Name(Cow::Owned(name)))
            }

            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(EventName::NotString)
            }

            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(EventName::NotString)
            }

            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(EventName::NotString)
            }

            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(EventName::NotString)
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(EventName::NotString)
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                while map
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(EventName::NotString)
            }
        }

        deserializer.deserialize_any(Visit(std::marker::PhantomData))
    }
}

/// Why an incoming frame could not be routed to a handler.
///
/// ```
/// use ws_gateway_core::frame::{FrameError, parse};
///
/// assert!(matches!(parse("{oops"), Err(FrameError::Malformed(_))));
/// assert!(matches!(parse("[1]"), Err(FrameError::NotAnObject)));
/// assert!(matches!(parse(r#"{"event":1}"#), Err(FrameError::EventNotString)));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The text is not JSON.
    #[error("Malformed JSON: {0}")]
    Malformed(serde_json::Error),
    /// The text is JSON, but not an object.
    #[error(r#"Invalid frame: expected a JSON object like {{"event": "name", "data": ...}}"#)]
    NotAnObject,
    /// The object has no `event` field.
    #[error(r#"Invalid frame: missing "event" field"#)]
    MissingEvent,
    /// The `event` field is not a string.
    #[error(r#"Invalid frame: "event" must be a string"#)]
    EventNotString,
    /// An answer (`{"ack": N, ...}` without `event`) whose `ack` is not a positive integer.
    #[error(r#"Invalid answer: "ack" must be a positive integer"#)]
    InvalidAck,
    /// A request's `args` is not a JSON array.
    #[error(r#"Invalid frame: "args" must be an array of the event's arguments"#)]
    ArgsNotArray,
    /// A request has both `data` and `args`.
    #[error(r#"Invalid frame: send either "data" (one argument) or "args" (several), not both"#)]
    DataAndArgs,
    /// A binary frame reached the JSON transport.
    #[error(r#"Binary frames are not supported: send JSON text frames like {{"event": "name", "data": ...}}"#)]
    Binary,
}

impl From<FrameError> for WsException {
    fn from(err: FrameError) -> Self {
        WsException::of_kind(crate::ErrorKind::BadRequest, err.to_string())
    }
}

/// Parses a text frame of the JSON protocol, `{"event": string, "data"?: any, "id"?: any}`:
/// the event name borrowed when it has no escapes, the body and id kept as raw JSON until a
/// handler's type is known.
///
/// # Errors
///
/// A [`FrameError`] saying precisely what is wrong with the frame.
///
/// # Examples
///
/// ```
/// let frame = ws_gateway_core::frame::parse(r#"{"event":"join","data":{"room":"a"},"id":7}"#).unwrap();
/// assert_eq!(frame.event, "join");
/// assert_eq!(frame.data().unwrap().get(), r#"{"room":"a"}"#);
/// assert_eq!(frame.id().unwrap().get(), "7");
///
/// let err = ws_gateway_core::frame::parse(r#"{"data":1}"#).unwrap_err();
/// assert_eq!(err.to_string(), r#"Invalid frame: missing "event" field"#);
/// ```
pub fn parse<'a>(text: &'a str) -> Result<Request<'a>, FrameError> {
    match parse_incoming(text)? {
        Incoming::Request(request) => Ok(request),
        Incoming::Answer(_) => Err(FrameError::MissingEvent),
    }
}

/// What a client sent on the JSON protocol: a request, or the answer to an acknowledgement
/// the server asked for.
///
/// # Examples
///
/// ```
/// use ws_gateway_core::transport::{Incoming, parse_incoming};
///
/// assert!(matches!(parse_incoming(r#"{"event":"e","data":1}"#), Ok(Incoming::Request(_))));
/// assert!(matches!(parse_incoming(r#"{"ack":1,"data":1}"#), Ok(Incoming::Answer(_))));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Incoming<'a> {
    /// A request, for the pipeline.
    Request(Request<'a>),
    /// An answer to `{"event":..,"data":..,"ack":N}`.
    Answer(crate::ack::AckAnswer<'a>),
}

impl<'a> From<Request<'a>> for Incoming<'a> {
    fn from(request: Request<'a>) -> Self {
        Incoming::Request(request)
    }
}

/// Parses a text frame of the JSON protocol: a request `{"event": string, "data"?: any,
/// "id"?: any}` as [`parse`] does, or an answer `{"ack": N, "data"?: any}` (no `event`) to an
/// acknowledgement the server asked for.
///
/// # Errors
///
/// A [`FrameError`] saying precisely what is wrong with the frame.
///
/// # Examples
///
/// ```
/// use ws_gateway_core::transport::{Incoming, parse_incoming};
///
/// let Ok(Incoming::Answer(answer)) = parse_incoming(r#"{"ack":12,"data":{"ok":true}}"#) else {
///     panic!("an answer")
/// };
/// assert_eq!((answer.ack, answer.data.unwrap().get()), (12, r#"{"ok":true}"#));
///
/// let err = parse_incoming(r#"{"ack":"x"}"#).unwrap_err();
/// assert_eq!(err.to_string(), r#"Invalid answer: "ack" must be a positive integer"#);
///
/// // Several arguments: `data` is the first.
/// let Ok(Incoming::Request(request)) = parse_incoming(r#"{"event":"move","args":["north",3]}"#) else {
///     panic!("a request")
/// };
/// assert_eq!(request.data().unwrap().get(), r#""north""#);
/// assert!(parse_incoming(r#"{"event":"move","args":3}"#).is_err());
/// ```
pub fn parse_incoming<'a>(text: &'a str) -> Result<Incoming<'a>, FrameError> {
    if !text.trim_start().starts_with('{') {
        // Serde would accept `[event, data]` for a struct; only objects are frames.
        return Err(match serde_json::from_str::<serde::de::IgnoredAny>(text) {
            Err(err) => FrameError::Malformed(err),
            Ok(_) => FrameError::NotAnObject,
        });
    }
    let raw: RawFrame<'a> = serde_json::from_str(text).map_err(FrameError::Malformed)?;
    let event = match raw.event {
        Some(event) => event,
        None => {
            let Some(ack) = raw.ack else {
                return Err(FrameError::MissingEvent);
            };
            let ack = serde_json::from_str::<u64>(ack.get())
                .ok()
                .filter(|&ack| ack > 0)
                .ok_or(FrameError::InvalidAck)?;
            return Ok(Incoming::Answer(crate::ack::AckAnswer {
                ack,
                data: raw.data.map(Cow::Borrowed),
            }));
        }
    };
    let event = match event {
        EventName::Name(name) => name,
        EventName::NotString => return Err(FrameError::EventNotString),
    };
    // Several arguments (Socket.IO's model): `data` is the first of them.
    let (data, args) = match raw.args {
        None => (raw.data, None),
        Some(_) if raw.data.is_some() => return Err(FrameError::DataAndArgs),
        Some(args) => {
            let items: Vec<&'a RawValue> =
                serde_json::from_str(args.get()).map_err(|_| FrameError::ArgsNotArray)?;
            (items.first().copied(), Some(args))
        }
    };
    Ok(Incoming::Request(Request {
        event,
        data: data.map(Cow::Borrowed),
        args: args.map(Cow::Borrowed),
        attachments: Cow::Borrowed(&[]),
        id: raw.id.map(Cow::Borrowed),
        route: None,
    }))
}

/// Whether `text` nests arrays and objects deeper than `max`, counted without parsing
/// (brackets inside strings are skipped). Run before parsing a message from a client.
///
/// # Examples
///
/// ```
/// use ws_gateway_core::frame::exceeds_depth;
///
/// assert!(!exceeds_depth(r#"{"event":"a","data":[[1]]}"#, 3));
/// assert!(exceeds_depth(r#"{"event":"a","data":[[[1]]]}"#, 3));
/// assert!(!exceeds_depth(r#"{"event":"a","data":"[[[[[["}"#, 1));
/// ```
pub fn exceeds_depth(text: &str, max: usize) -> bool {
    // Each level takes an opening and a closing bracket: a text this short cannot nest
    // deeper than `max`, and most messages are this short.
    if text.len() <= max.saturating_mul(2) {
        return false;
    }
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in text.as_bytes() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Encodes the exception frame of NestJS 12's `BaseWsExceptionFilter`:
/// `{"event":"exception","data":{"status":"error","message":...,"cause":{"pattern":...,"data":...}}}`
/// with the exception's extra fields beside `message`, `cause` when the frame had an event,
/// and the request's `id` when it had one.
///
/// The frame is at most [`MAX_EXCEPTION_OVERHEAD`] bytes plus the request: `cause` and `id`
/// repeat no more than the request held, a longer message is cut at
/// [`MAX_EXCEPTION_MESSAGE`] bytes (ending in `…`), and fields past
/// [`MAX_EXCEPTION_FIELDS`] bytes are left out, with `"truncated":true` in their place.
///
/// # Examples
///
/// ```
/// use ws_gateway_core::{WsException, frame::{exception_frame, parse}};
///
/// let request = parse(r#"{"event":"join","data":{"room":""},"id":"a1"}"#).unwrap();
/// let frame = exception_frame(&WsException::new("Room name is empty"), Some(&request));
/// assert_eq!(
///     frame.as_str(),
///     r#"{"event":"exception","data":{"status":"error","message":"Room name is empty","cause":{"pattern":"join","data":{"room":""}}},"id":"a1"}"#
/// );
/// ```
pub fn exception_frame(err: &WsException, request: Option<&Request<'_>>) -> Frame {
    let mut buf = Vec::with_capacity(128);
    buf.extend_from_slice(br#"{"event":"exception","data":{"status":"error","message":"#);
    push_json(
        &mut buf,
        clip(err.message(), MAX_EXCEPTION_MESSAGE).as_ref(),
    );
    let fields_start = buf.len();
    let mut truncated = false;
    for (key, value) in err.fields() {
        let mark = buf.len();
        buf.push(b',');
        push_json(&mut buf, key);
        buf.push(b':');
        push_json(&mut buf, value);
        if buf.len() - fields_start > MAX_EXCEPTION_FIELDS {
            buf.truncate(mark);
            truncated = true;
        }
    }
    if truncated {
        buf.extend_from_slice(br#","truncated":true"#);
    }
    if let Some(request) = request {
        buf.extend_from_slice(br#","cause":{"pattern":"#);
        push_json(&mut buf, &*request.event);
        buf.extend_from_slice(br#","data":"#);
        buf.extend_from_slice(request.data().map_or("null", RawValue::get).as_bytes());
        buf.push(b'}');
    }
    buf.push(b'}');
    write_tail(&mut buf, request.and_then(Request::id));
    Frame::from_json(buf)
}

/// Appends a value that cannot fail to serialize (strings, `serde_json::Value`).
/// The longest message an exception frame carries, in bytes of JSON: a message that quotes
/// what the client sent (serde's "invalid type: string \"...\"") is cut there.
pub const MAX_EXCEPTION_MESSAGE: usize = 1024;

/// The most bytes of JSON an exception frame gives to the exception's extra fields.
pub const MAX_EXCEPTION_FIELDS: usize = 4096;

/// The most an exception frame adds to the request it answers: the envelope, the message
/// and the fields.
pub const MAX_EXCEPTION_OVERHEAD: usize = 128 + MAX_EXCEPTION_MESSAGE + MAX_EXCEPTION_FIELDS;

/// `text`, cut so that its JSON encoding takes at most `max` bytes, ending in `…` if cut.
fn clip(text: &str, max: usize) -> Cow<'_, str> {
    const ELLIPSIS: char = '…';
    let encoded = |c: char| match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        c if u32::from(c) < 0x20 => 6,
        c => c.len_utf8(),
    };
    // Two bytes for the quotes.
    let budget = max.saturating_sub(2);
    let mut used = 0;
    let mut cut = None;
    for (at, c) in text.char_indices() {
        if cut.is_none() && used + encoded(c) > budget.saturating_sub(ELLIPSIS.len_utf8()) {
            cut = Some(at);
        }
        used += encoded(c);
        if used > budget {
            let at = cut.unwrap_or(at);
            return Cow::Owned(format!("{}{ELLIPSIS}", &text[..at]));
        }
    }
    Cow::Borrowed(text)
}

fn push_json<T: serde::Serialize + ?Sized>(buf: &mut Vec<u8>, value: &T) {
    if serde_json::to_writer(&mut *buf, value).is_err() {
        buf.extend_from_slice(b"null");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn only_a_trailing_ack_field_is_the_frames() {
        let json = |text: &str| Frame::from_json(text.as_bytes().to_vec());
        let asked = json(r#"{"event":"e","data":{"ack":3},"ack":12}"#);
        assert_eq!(asked.ack(), Some(12));
        assert_eq!(
            asked.without_ack().as_str(),
            r#"{"event":"e","data":{"ack":3}}"#
        );
        for text in [
            r#"{"event":"e","data":{"ack":3}}"#,
            r#"{"event":"e","data":[1,"ack":3]}"#,
            r#"{"event":"e","data":3}"#,
            r#"{"ack":3}"#,
            r#"{"event":"e","ack":}"#,
            r#"{"event":"e","ack":99999999999999999999999}"#,
            r#"{"event":"e","ack":-1}"#,
            "",
        ] {
            assert_eq!(json(text).ack(), None, "{text}");
            assert_eq!(json(text).without_ack().as_str(), text);
        }
    }

    #[test]
    fn parses_escaped_event_names() {
        let frame = parse(r#"{"event":"a\"b","data":null}"#).unwrap();
        assert_eq!(frame.event, "a\"b");
        assert!(frame.data().is_none());
    }

    #[test]
    fn borrows_plain_event_names() {
        let frame = parse(r#"{"event":"plain"}"#).unwrap();
        assert!(matches!(frame.event, Cow::Borrowed("plain")));
    }

    #[test]
    fn says_what_is_wrong() {
        assert!(error_of("{oops").starts_with("Malformed JSON: "));
        assert!(error_of("").starts_with("Malformed JSON: "));
        assert_eq!(
            error_of(r#"["events", 1]"#),
            r#"Invalid frame: expected a JSON object like {"event": "name", "data": ...}"#
        );
        assert_eq!(
            error_of(r#"{"event":5}"#),
            r#"Invalid frame: "event" must be a string"#
        );
        assert_eq!(
            error_of(r#"{"event":null}"#),
            r#"Invalid frame: missing "event" field"#
        );
        for not_a_name in [r#"true"#, r#"-1.5"#, r#"[1,[2]]"#, r#"{"a":{"b":1}}"#] {
            assert_eq!(
                error_of(&format!(r#"{{"event":{not_a_name},"data":1}}"#)),
                r#"Invalid frame: "event" must be a string"#,
                "{not_a_name}"
            );
        }
        assert!(error_of(r#"{"event":[1,}"#).starts_with("Malformed JSON: "));
    }

    #[test]
    fn exception_without_request_has_no_cause() {
        let frame = exception_frame(&WsException::new("bad").with("code", 3), None);
        assert_eq!(
            frame.as_str(),
            r#"{"event":"exception","data":{"status":"error","message":"bad","code":3}}"#
        );
    }

    #[test]
    fn long_messages_are_cut_in_their_json_encoding() {
        for c in ['x', '"', '\u{1}', 'é', '\n'] {
            let message: String = std::iter::repeat_n(c, 5_000).collect();
            let frame = exception_frame(&WsException::new(message), None);
            let data: serde_json::Value = serde_json::from_str(frame.as_str()).unwrap();
            let sent = data["data"]["message"].as_str().unwrap();
            let encoded = serde_json::to_string(sent).unwrap().len();
            assert!(encoded <= MAX_EXCEPTION_MESSAGE, "{c:?}: {encoded} bytes");
            assert!(
                encoded > MAX_EXCEPTION_MESSAGE - 8,
                "{c:?}: {encoded} bytes"
            );
            assert!(sent.ends_with('…'));
        }
        let short = exception_frame(&WsException::new("short"), None);
        assert!(short.as_str().contains(r#""message":"short""#));
    }

    #[test]
    fn fields_past_their_budget_are_left_out() {
        let err = WsException::new("bad")
            .with("a", 1)
            .with("big", "x".repeat(MAX_EXCEPTION_FIELDS))
            .with("c", 3);
        let frame = exception_frame(&err, None);
        assert_eq!(
            frame.as_str(),
            r#"{"event":"exception","data":{"status":"error","message":"bad","a":1,"c":3,"truncated":true}}"#
        );
    }

    #[test]
    fn depth_is_counted_right_at_the_length_shortcut() {
        // Depth 3 in 6 bytes: the shortest text of that depth.
        assert!(exceeds_depth("[[[]]]", 2));
        assert!(!exceeds_depth("[[[]]]", 3));
        assert!(exceeds_depth("[[[1]]]", 2));
        assert!(!exceeds_depth("[[]]", 2));
    }

    #[test]
    fn event_frames_escape_names() {
        let frame = Frame::event("a\"b", &[1, 2]).unwrap();
        assert_eq!(frame.as_str(), r#"{"event":"a\"b","data":[1,2]}"#);
    }
}
