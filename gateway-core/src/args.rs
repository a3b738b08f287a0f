//! Socket.IO's data model: a message carries a list of arguments, and byte strings inside
//! them travel as binary attachments.
//!
//! A message's arguments are one JSON array; a byte string among them is written in that
//! array as Socket.IO's placeholder, `{"_placeholder":true,"num":N}`, the `N`th attachment
//! of the message. The JSON transport has one argument, its `data` (none without one), and
//! no attachments: a byte string there is an array of numbers, as serde_json writes it.

use std::borrow::Cow;
use std::fmt;
use std::io;

use bytes::Bytes;
use serde::de::{DeserializeOwned, MapAccess, Visitor};
use serde::ser::{Error as _, SerializeMap, SerializeTuple};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;

use crate::dispatch::Context;
use crate::exception::{ErrorKind, WsException};
use crate::extract::FromContext;

/// Every argument of the message, deserialized as one `T`: a tuple
/// (`Args<(String, u32)>` for `socket.emit("e", "a", 1)`), a `Vec`, or any type that
/// deserializes from a JSON array. Returned from a handler, it replies with several
/// arguments (a Socket.IO callback's `cb(a, b)`).
///
/// Over Socket.IO these are the event's arguments; over plain WebSockets the message has
/// one argument, its `data` (none without one). A byte string among them
/// ([`bytes::Bytes`], `Vec<u8>`, `serde_bytes::ByteBuf`) receives a binary attachment, and
/// goes out as one.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use ws_gateway_core::prelude::*;
/// use ws_gateway_core::{Args, Handshake};
///
/// #[websocket_gateway(path = "/doc-args")]
/// struct Moves;
///
/// #[websocket_gateway]
/// impl Moves {
///     /// `socket.emit("move", "north", 3, (to, steps) => ..)` answers `("north", 6)`.
///     #[subscribe("move")]
///     fn mv(&self, Args((to, steps)): Args<(String, u32)>) -> Args<(String, u32)> {
///         Args((to, steps * 2))
///     }
///
///     /// Over plain WebSockets `data` is the one argument.
///     #[subscribe("count")]
///     fn count(&self, Args(args): Args<Vec<serde_json::Value>>) -> usize {
///         args.len()
///     }
/// }
///
/// let app = GatewayApp::new().gateway::<Moves>().build().unwrap();
/// let gw = &app.gateways()[0];
/// let (client, _queue) = gw.open(Handshake::default(), 8);
/// let answer = gw.handle_json(&client, r#"{"event":"count","data":[1,2]}"#).answer().await;
/// assert_eq!(answer.frame().unwrap().as_str(), r#"{"event":"count","data":1}"#);
/// let answer = gw.handle_json(&client, r#"{"event":"count"}"#).answer().await;
/// assert_eq!(answer.frame().unwrap().as_str(), r#"{"event":"count","data":0}"#);
/// // Several arguments go out as `args`.
/// let answer = gw.handle_json(&client, r#"{"event":"move","data":"north"}"#).answer().await;
/// assert!(answer.frame().unwrap().as_str().contains("Invalid message arguments"));
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Args<T>(pub T);

/// The name [`Args`] serializes under, so that replies and frames recognize it.
pub(crate) const ARGS: &str = "$ws_gateway::Args";

impl<T: Serialize> Serialize for Args<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_newtype_struct(ARGS, &self.0)
    }
}

impl<T: DeserializeOwned> FromContext for Args<T> {
    fn from_context(cx: &Context<'_>) -> Result<Self, WsException> {
        let text = cx.args();
        let inlined;
        let text = if cx.attachments().is_empty() {
            text.get()
        } else {
            inlined = inline(&text, cx.attachments()).map_err(|err| invalid(cx, &err))?;
            inlined.as_str()
        };
        serde_json::from_str(text)
            .map(Args)
            .map_err(|err| invalid(cx, &err))
    }
}

fn invalid(cx: &Context<'_>, err: &serde_json::Error) -> WsException {
    let err = WsException::of_kind(
        ErrorKind::BadRequest,
        format!("Invalid message arguments: {err}"),
    );
    tracing::debug!(target: "gateway::rejection", event = cx.event(), "{err}");
    err
}

/// Every argument of the message as the client sent it: the JSON array (numbers and key
/// order as written) and its binary attachments. Emitted again
/// ([`Client::emit_args`](crate::Client::emit_args)) or returned from a handler, the
/// arguments go out exactly as they came in, bytes as binary attachments.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use ws_gateway_core::prelude::*;
/// use ws_gateway_core::{Handshake, RawArgs};
///
/// #[websocket_gateway(path = "/doc-raw-args")]
/// struct Echo;
///
/// #[websocket_gateway]
/// impl Echo {
///     /// `message-back` with the same arguments, and the same through the callback.
///     #[subscribe("message")]
///     fn message(&self, client: Client, args: RawArgs) -> Result<RawArgs, SendError> {
///         client.emit_args("message-back", &args)?;
///         Ok(args)
///     }
/// }
/// # use ws_gateway_core::SendError;
///
/// let app = GatewayApp::new().gateway::<Echo>().build().unwrap();
/// let gw = &app.gateways()[0];
/// let (client, mut queue) = gw.open(Handshake::default(), 8);
/// let answer = gw.handle_json(&client, r#"{"event":"message","data":{"b":1,"a":2.50}}"#).answer().await;
/// assert_eq!(answer.frame().unwrap().as_str(), r#"{"event":"message","args":[{"b":1,"a":2.50}]}"#);
/// let Some(ws_gateway_core::transport::Outbound::Frame(back)) = queue.try_recv() else { panic!() };
/// assert_eq!(back.as_str(), r#"{"event":"message-back","args":[{"b":1,"a":2.50}]}"#);
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct RawArgs {
    args: Box<RawValue>,
    attachments: Vec<Bytes>,
}

impl RawArgs {
    /// The arguments as one JSON array, byte strings as placeholders
    /// (`{"_placeholder":true,"num":N}`, see [`attachments`](Self::attachments)).
    ///
    /// # Examples
    ///
    /// ```
    /// let args = ws_gateway_core::RawArgs::new(serde_json::from_str("[1, \"a\"]").unwrap(), vec![]);
    /// assert_eq!(args.get().get(), r#"[1, "a"]"#);
    /// ```
    pub fn get(&self) -> &RawValue {
        &self.args
    }

    /// The binary attachments, in the order of their placeholders' numbers.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::RawArgs;
    ///
    /// let text = serde_json::from_str(r#"[{"_placeholder":true,"num":0}]"#).unwrap();
    /// let args = RawArgs::new(text, vec![bytes::Bytes::from_static(b"\x01\x02")]);
    /// assert_eq!(&args.attachments()[0][..], b"\x01\x02");
    /// ```
    pub fn attachments(&self) -> &[Bytes] {
        &self.attachments
    }

    /// Arguments from a JSON array and its attachments.
    ///
    /// # Examples
    ///
    /// ```
    /// let args = ws_gateway_core::RawArgs::new(serde_json::from_str("[]").unwrap(), vec![]);
    /// assert!(args.attachments().is_empty());
    /// ```
    pub fn new(args: Box<RawValue>, attachments: Vec<Bytes>) -> Self {
        Self { args, attachments }
    }

    /// The arguments deserialized as a `T`, attachments as byte strings (as [`Args<T>`]).
    ///
    /// # Errors
    ///
    /// The arguments do not fit `T`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::RawArgs;
    ///
    /// let text = serde_json::from_str(r#"["a",{"_placeholder":true,"num":0}]"#).unwrap();
    /// let args = RawArgs::new(text, vec![bytes::Bytes::from_static(b"\x01\x02")]);
    /// let (name, file): (String, bytes::Bytes) = args.deserialize().unwrap();
    /// assert_eq!((name.as_str(), &file[..]), ("a", &b"\x01\x02"[..]));
    /// ```
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        if self.attachments.is_empty() {
            serde_json::from_str(self.args.get())
        } else {
            serde_json::from_str(&inline(&self.args, &self.attachments)?)
        }
    }
}

impl FromContext for RawArgs {
    fn from_context(cx: &Context<'_>) -> Result<Self, WsException> {
        Ok(RawArgs {
            args: cx.args().into_owned(),
            attachments: cx.attachments().to_vec(),
        })
    }
}

/// Serializes as [`Args`] of the arguments, each byte string placeholder as the bytes.
impl Serialize for RawArgs {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_newtype_struct(
            ARGS,
            &Spread(WithAttachments {
                json: &self.args,
                attachments: &self.attachments,
            }),
        )
    }
}

/// JSON text whose placeholders stand for binary attachments, serialized with each
/// placeholder as the byte string it stands for (`serialize_bytes`) and the rest verbatim:
/// how a transport with binary attachments of its own (Socket.IO's encoder) sends a
/// [`BinaryFrame`](crate::BinaryFrame)'s data or arguments.
///
/// # Examples
///
/// ```
/// use serde_json::value::RawValue;
/// use ws_gateway_core::transport::Attached;
///
/// let json: &RawValue = serde_json::from_str(r#"["a",{"_placeholder":true,"num":0}]"#).unwrap();
/// let bytes = [bytes::Bytes::from_static(&[7, 8])];
/// // serde_json writes byte strings as arrays of numbers.
/// let text = serde_json::to_string(&Attached::new(json, &bytes)).unwrap();
/// assert_eq!(text, r#"["a",[7,8]]"#);
/// ```
#[derive(Clone, Copy)]
pub struct Attached<'a> {
    inner: WithAttachments<'a>,
    spread: bool,
}

impl<'a> Attached<'a> {
    /// `json` with its placeholders standing for `attachments`.
    pub fn new(json: &'a RawValue, attachments: &'a [Bytes]) -> Self {
        Self {
            inner: WithAttachments { json, attachments },
            spread: false,
        }
    }

    /// A JSON array of arguments, serialized as a tuple (Socket.IO's encoder spreads a tuple
    /// into the event's arguments).
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::value::RawValue;
    /// use ws_gateway_core::transport::Attached;
    ///
    /// let json: &RawValue = serde_json::from_str("[1, 2]").unwrap();
    /// assert_eq!(serde_json::to_string(&Attached::spread(json, &[])).unwrap(), "[1,2]");
    /// ```
    pub fn spread(args: &'a RawValue, attachments: &'a [Bytes]) -> Self {
        Self {
            inner: WithAttachments {
                json: args,
                attachments,
            },
            spread: true,
        }
    }
}

impl Serialize for Attached<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.spread {
            Spread(self.inner).serialize(serializer)
        } else {
            self.inner.serialize(serializer)
        }
    }
}

impl fmt::Debug for Attached<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attached")
            .field("json", &self.inner.json)
            .field("attachments", &self.inner.attachments.len())
            .field("spread", &self.spread)
            .finish()
    }
}

/// A JSON array serialized as a tuple, each element with its attachments (Socket.IO's
/// serializer spreads a tuple into the event's arguments).
pub(crate) struct Spread<'a>(pub(crate) WithAttachments<'a>);

impl Serialize for Spread<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let items: Vec<&RawValue> =
            serde_json::from_str(self.0.json.get()).map_err(S::Error::custom)?;
        let mut tuple = serializer.serialize_tuple(items.len())?;
        for json in items {
            tuple.serialize_element(&WithAttachments {
                json,
                attachments: self.0.attachments,
            })?;
        }
        tuple.end()
    }
}

/// JSON text whose placeholders stand for `attachments`: serialized verbatim, except that
/// each placeholder is the byte string it stands for (`serialize_bytes`). Without
/// attachments nothing is parsed.
#[derive(Clone, Copy)]
pub(crate) struct WithAttachments<'a> {
    pub(crate) json: &'a RawValue,
    pub(crate) attachments: &'a [Bytes],
}

impl Serialize for WithAttachments<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let text = self.json.get().trim_start();
        if self.attachments.is_empty() {
            return self.json.serialize(serializer);
        }
        let nested = |json| WithAttachments {
            json,
            attachments: self.attachments,
        };
        match text.as_bytes().first() {
            Some(b'[') => {
                let items: Vec<&RawValue> = serde_json::from_str(text).map_err(S::Error::custom)?;
                serializer.collect_seq(items.into_iter().map(nested))
            }
            Some(b'{') => {
                if let Ok(Placeholder(num)) = serde_json::from_str(text)
                    && let Some(bytes) = self.attachments.get(num)
                {
                    return serializer.serialize_bytes(bytes);
                }
                let Entries(entries) = serde_json::from_str(text).map_err(S::Error::custom)?;
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    map.serialize_entry(&key, &nested(value))?;
                }
                map.end()
            }
            _ => self.json.serialize(serializer),
        }
    }
}

/// `{"_placeholder":true,"num":N}`, exactly those two fields.
struct Placeholder(usize);

impl<'de> Deserialize<'de> for Placeholder {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct Visit;

        impl<'de> Visitor<'de> for Visit {
            type Value = Placeholder;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a binary placeholder")
            }

            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Placeholder, M::Error> {
                let (mut flag, mut num) = (false, None);
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    match &*key {
                        "_placeholder" if !flag => flag = map.next_value::<bool>()?,
                        "num" if num.is_none() => num = Some(map.next_value::<usize>()?),
                        _ => return Err(serde::de::Error::custom("not a placeholder")),
                    }
                }
                match (flag, num) {
                    (true, Some(num)) => Ok(Placeholder(num)),
                    _ => Err(serde::de::Error::custom("not a placeholder")),
                }
            }
        }

        de.deserialize_map(Visit)
    }
}

/// An object's entries in the order written, values verbatim.
struct Entries<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Entries<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct Visit<'a>(std::marker::PhantomData<&'a ()>);

        impl<'de: 'a, 'a> Visitor<'de> for Visit<'a> {
            type Value = Entries<'a>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }

            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Entries<'a>, M::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(4));
                while let Some(entry) = map.next_entry::<Cow<'de, str>, &'de RawValue>()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }

        de.deserialize_map(Visit(std::marker::PhantomData))
    }
}

/// The JSON text with each placeholder replaced by its bytes as an array of numbers, which
/// every byte-string type deserializes from (`Bytes`, `Vec<u8>`, `serde_bytes`).
pub(crate) fn inline(json: &RawValue, attachments: &[Bytes]) -> Result<String, serde_json::Error> {
    serde_json::to_string(&WithAttachments { json, attachments })
}

/// A serde_json formatter that writes each byte string as the next placeholder and keeps
/// its bytes: how frames capture binary attachments. Otherwise compact, as
/// `serde_json::to_writer`.
pub(crate) struct Collect<'a>(pub(crate) &'a mut Vec<Bytes>);

impl serde_json::ser::Formatter for Collect<'_> {
    fn write_byte_array<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        value: &[u8],
    ) -> io::Result<()> {
        writer.write_all(br#"{"_placeholder":true,"num":"#)?;
        writer.write_all(itoa::Buffer::new().format(self.0.len()).as_bytes())?;
        writer.write_all(b"}")?;
        self.0.push(Bytes::copy_from_slice(value));
        Ok(())
    }
}

/// Writes `value` as JSON into `buf`, each byte string as a placeholder whose bytes are
/// pushed to `attachments`.
pub(crate) fn write_json<T: Serialize + ?Sized>(
    buf: &mut Vec<u8>,
    value: &T,
    attachments: &mut Vec<Bytes>,
) -> Result<(), serde_json::Error> {
    let mut ser = serde_json::Serializer::with_formatter(buf, Collect(attachments));
    value.serialize(&mut ser)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).unwrap()
    }

    #[test]
    fn placeholders_become_bytes_and_the_rest_stays_verbatim() {
        let bins = [Bytes::from_static(&[1, 2]), Bytes::from_static(&[3])];
        let text = raw(
            r#"[{"z":1.50,"a":{"_placeholder":true,"num":1}},{"_placeholder":true,"num":0},"x"]"#,
        );
        assert_eq!(
            inline(&text, &bins).unwrap(),
            r#"[{"z":1.50,"a":[3]},[1,2],"x"]"#
        );
        // Captured again as attachments, in the order met.
        let mut out = Vec::new();
        let mut buf = Vec::new();
        write_json(
            &mut buf,
            &WithAttachments {
                json: &text,
                attachments: &bins,
            },
            &mut out,
        )
        .unwrap();
        assert_eq!(
            std::str::from_utf8(&buf).unwrap(),
            r#"[{"z":1.50,"a":{"_placeholder":true,"num":0}},{"_placeholder":true,"num":1},"x"]"#
        );
        assert_eq!(out, [bins[1].clone(), bins[0].clone()]);
    }

    #[test]
    fn lookalikes_and_unknown_numbers_are_not_placeholders() {
        let bins = [Bytes::from_static(&[9])];
        for text in [
            r#"{"_placeholder":false,"num":0}"#,
            r#"{"_placeholder":true,"num":5}"#,
            r#"{"_placeholder":true,"num":0,"x":1}"#,
        ] {
            assert_eq!(inline(&raw(text), &bins).unwrap(), text);
        }
    }

    #[test]
    fn raw_args_deserialize_with_their_bytes() {
        let args = RawArgs::new(
            raw(r#"["a",{"_placeholder":true,"num":0}]"#),
            vec![Bytes::from_static(b"hi")],
        );
        let (name, bytes): (String, Vec<u8>) = args.deserialize().unwrap();
        assert_eq!((name.as_str(), bytes.as_slice()), ("a", &b"hi"[..]));
    }
}
