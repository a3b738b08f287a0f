//! Socket.IO packets to and from the gateway's frames and requests: an event's arguments
//! read verbatim, a frame written as an event or an acknowledgement. The packet format
//! itself (type, attachment count, namespace, ack id) is socketioxide's parser's.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt;

use axum::body::Bytes;
use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use serde_json::value::RawValue;
use socketioxide_core::Value;
use socketioxide_core::packet::{Packet, PacketData};
use socketioxide_core::parser::Parse;
use socketioxide_parser_common::CommonParser;
use ws_gateway_core::Frame;

use super::engine::Str;

/// An event the client sent: its name, every argument verbatim (key order and numbers
/// kept, no DOM built) as their own JSON array, and the first one.
pub(super) struct EventArgs {
    pub(super) event: String,
    pub(super) args: Box<RawValue>,
    pub(super) first: Option<Box<RawValue>>,
}

/// Reads `["event", arg, ...]` in one pass: the event, the arguments as their own JSON
/// array `[arg, ...]`, and the first one, each argument copied verbatim. The arguments are
/// checked once, by this pass: the copies are written from what it read, not parsed again.
pub(super) fn read_args(text: &str) -> Option<EventArgs> {
    /// The event, the first argument, the others.
    type Read<'de> = (Cow<'de, str>, Option<&'de RawValue>, Vec<&'de RawValue>);

    struct Args;

    impl<'de> Visitor<'de> for Args {
        type Value = Read<'de>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(r#"["event", ...args]"#)
        }

        fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
            let event: Cow<'de, str> = seq
                .next_element::<EventName<'de>>()?
                .ok_or_else(|| serde::de::Error::invalid_length(0, &self))?
                .0;
            let first = seq.next_element::<&'de RawValue>()?;
            // One argument, the usual message, without a `Vec`.
            let mut rest = Vec::new();
            if first.is_some() {
                while let Some(arg) = seq.next_element::<&'de RawValue>()? {
                    rest.push(arg);
                }
            }
            Ok((event, first, rest))
        }
    }

    impl<'de> DeserializeSeed<'de> for Args {
        type Value = Read<'de>;

        fn deserialize<D: serde::Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
            de.deserialize_seq(self)
        }
    }

    let mut de = serde_json::Deserializer::from_str(text);
    let (event, first, rest) = Args.deserialize(&mut de).ok()?;
    de.end().ok()?;
    // `to_raw_value` writes the arguments read, verbatim, and takes the text as it is.
    let args = match first {
        None => serde_json::value::to_raw_value::<[&RawValue]>(&[]),
        Some(first) if rest.is_empty() => serde_json::value::to_raw_value(&[first]),
        Some(first) => {
            let mut all = Vec::with_capacity(rest.len() + 1);
            all.push(first);
            all.extend(rest);
            serde_json::value::to_raw_value(&all)
        }
    }
    .ok()?;
    Some(EventArgs {
        event: event.into_owned(),
        args,
        first: first.map(RawValue::to_owned),
    })
}

/// An event name, borrowed when it has no escapes.
struct EventName<'a>(Cow<'a, str>);

impl<'de> serde::Deserialize<'de> for EventName<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct Name;

        impl<'de> Visitor<'de> for Name {
            type Value = Cow<'de, str>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an event name")
            }

            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                name: &'de str,
            ) -> Result<Self::Value, E> {
                Ok(Cow::Borrowed(name))
            }

            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<Self::Value, E> {
                Ok(Cow::Owned(name.to_owned()))
            }
        }

        de.deserialize_str(Name).map(EventName)
    }
}

/// What a frame carries after its event: one argument, `data`, or several, `args`.
#[derive(Debug, Clone, Copy)]
enum Payload<'a> {
    Data(&'a RawValue),
    Args(&'a RawValue),
}

/// A frame's event, payload and recovery offset, as the JSON text the frame holds (with
/// placeholders for a frame with binary attachments). The frames the gateway encodes,
/// `{"event":"name","data":...}` and `{"event":"name","args":[...]}`, are split without
/// parsing their event and with one pass over their data; any other envelope is parsed.
fn split_frame(text: &str) -> Option<(Cow<'_, str>, Payload<'_>, Option<Cow<'_, str>>)> {
    let fast = text.strip_prefix(r#"{"event":""#).and_then(|rest| {
        let end = rest.find(['"', '\\'])?;
        let (event, rest) = rest.split_at(end);
        let (args, rest) = match rest.strip_prefix(r#"","data":"#) {
            Some(rest) => (false, rest),
            None => (true, rest.strip_prefix(r#"","args":"#)?),
        };
        // Fails on a frame with more fields after `data` (an `id`, an `offset`), parsed
        // below.
        let data = serde_json::from_str::<&RawValue>(rest.strip_suffix('}')?).ok()?;
        let payload = if args {
            Payload::Args(data)
        } else {
            Payload::Data(data)
        };
        Some((Cow::Borrowed(event), payload, None))
    });
    if fast.is_some() {
        return fast;
    }
    #[derive(serde::Deserialize)]
    struct Envelope<'a> {
        #[serde(borrow)]
        event: Cow<'a, str>,
        #[serde(borrow, default)]
        data: Option<&'a RawValue>,
        #[serde(borrow, default)]
        args: Option<&'a RawValue>,
        #[serde(borrow, default)]
        offset: Option<Cow<'a, str>>,
    }
    let envelope: Envelope<'_> = serde_json::from_str(text).ok()?;
    let payload = match (envelope.args, envelope.data) {
        (Some(args), _) => Payload::Args(args),
        (None, Some(data)) => Payload::Data(data),
        (None, None) => Payload::Data(RawValue::NULL),
    };
    Some((envelope.event, payload, envelope.offset))
}

/// A frame's text and binary attachments.
fn text_of(frame: &Frame) -> (&str, &[Bytes]) {
    match frame.binary() {
        Some(binary) => (binary.as_str(), binary.attachments()),
        None => (frame.as_str(), &[]),
    }
}

/// Appends the arguments of `payload` to a JSON array being written (after its `[` and
/// anything before): the one argument of `data`, the elements of `args`.
fn push_args(buf: &mut String, payload: Payload<'_>, mut first: bool) {
    let mut comma = |buf: &mut String| {
        if !std::mem::take(&mut first) {
            buf.push(',');
        }
    };
    match payload {
        Payload::Data(data) => {
            comma(buf);
            buf.push_str(data.get());
        }
        Payload::Args(args) => {
            let inner = args
                .get()
                .trim()
                .strip_prefix('[')
                .and_then(|inner| inner.strip_suffix(']'))
                .map(str::trim);
            match inner {
                Some("") => {}
                Some(inner) => {
                    comma(buf);
                    buf.push_str(inner);
                }
                // `args` that is no array: one argument, as it is.
                None => {
                    comma(buf);
                    buf.push_str(args.get());
                }
            }
        }
    }
}

/// A packet encoded by socketioxide's parser: its text, and the binary attachments that
/// follow it.
#[derive(Clone)]
pub(super) struct Encoded {
    pub(super) text: Str,
    pub(super) attachments: Option<VecDeque<Bytes>>,
}

impl Encoded {
    fn of(packet: Packet) -> Self {
        match CommonParser.encode(packet) {
            Value::Str(text, attachments) => Self { text, attachments },
            // The common parser writes text packets only.
            Value::Bytes(bytes) => Self {
                text: Str::from(String::from_utf8_lossy(&bytes).into_owned()),
                attachments: None,
            },
        }
    }
}

/// The data of an event packet for `frame`: `["event", ...args]`, with the frame's
/// recovery offset as the last argument when it has one (as Socket.IO's recovery sends
/// it), and the attachments its placeholders stand for. `None` for a frame that is no
/// event.
pub(super) fn event_data(frame: &Frame) -> Option<Value> {
    let (text, attachments) = text_of(frame);
    let (event, payload, offset) = split_frame(text)?;
    let mut buf = String::with_capacity(text.len() + 8);
    buf.push('[');
    // Event names and offsets are JSON strings: written escaped.
    buf.push_str(&serde_json::to_string(&*event).ok()?);
    push_args(&mut buf, payload, false);
    if let Some(offset) = offset {
        buf.push(',');
        buf.push_str(&serde_json::to_string(&*offset).ok()?);
    }
    buf.push(']');
    Some(Value::Str(Str::from(buf), attachments_of(attachments)))
}

/// The data of an acknowledgement answering a request with `frame`: its arguments,
/// `[data]` or `[...args]`, and its attachments.
pub(super) fn answer_data(frame: &Frame) -> Option<Value> {
    let (text, attachments) = text_of(frame);
    let (_, payload, _) = split_frame(text)?;
    let mut buf = String::with_capacity(text.len());
    buf.push('[');
    push_args(&mut buf, payload, true);
    buf.push(']');
    Some(Value::Str(Str::from(buf), attachments_of(attachments)))
}

/// The event a frame is under, for matching a reply with the request it answers.
pub(super) fn event_of(frame: &Frame) -> Option<Cow<'_, str>> {
    let (text, _) = text_of(frame);
    split_frame(text).map(|(event, _, _)| event)
}

fn attachments_of(attachments: &[Bytes]) -> Option<VecDeque<Bytes>> {
    (!attachments.is_empty()).then(|| attachments.iter().cloned().collect())
}

/// An event packet on namespace `ns`, asking for acknowledgement `ack` if given.
pub(super) fn event_packet(ns: &Str, data: Value, ack: Option<i64>) -> Encoded {
    let mut packet = Packet::event(ns.clone(), data);
    if let Some(ack) = ack {
        packet.inner.set_ack_id(ack);
    }
    Encoded::of(packet)
}

/// The acknowledgement `ack` on namespace `ns`.
pub(super) fn ack_packet(ns: &Str, data: Value, ack: i64) -> Encoded {
    Encoded::of(Packet::ack(ns.clone(), data, ack))
}

/// The answer to a namespace CONNECT: `{"sid": id}`, with the recovery session's `pid`.
pub(super) fn connect_packet(ns: &Str, sid: &str, pid: Option<&str>) -> Encoded {
    let string = |s: &str| serde_json::Value::from(s).to_string();
    let payload = match pid {
        Some(pid) => format!(r#"{{"sid":{},"pid":{}}}"#, string(sid), string(pid)),
        None => format!(r#"{{"sid":{}}}"#, string(sid)),
    };
    let payload = Value::Str(Str::from(payload), None);
    Encoded::of(Packet::connect(ns.clone(), Some(payload)))
}

/// A refused namespace CONNECT, with the reason as its `message`.
pub(super) fn connect_error_packet(ns: &Str, message: &str) -> Encoded {
    Encoded::of(Packet::connect_error(ns.clone(), message))
}

/// The server ends the client's membership of namespace `ns`.
pub(super) fn disconnect_packet(ns: &Str) -> Encoded {
    Encoded::of(Packet {
        inner: PacketData::Disconnect,
        ns: ns.clone(),
    })
}

/// The answer a client's acknowledgement packet carries (`None` for a binary one, not
/// read): see [`answer_json`].
pub(super) fn answer_of(value: Value) -> Option<Box<RawValue>> {
    match value {
        Value::Str(text, _) => answer_json(text.as_str()),
        Value::Bytes(_) => None,
    }
}

/// The arguments of a Socket.IO acknowledgement as the gateway sees the answer, each kept
/// as JSON text (no DOM is built: the answer passes verbatim, as on the JSON protocol):
/// the argument when there is one, `null` for none, the array of arguments for several
/// (`callback(a, b)` answers `[a, b]`).
fn answer_json(args: &str) -> Option<Box<RawValue>> {
    serde_json::from_str::<AnswerArgs>(args)
        .ok()
        .and_then(AnswerArgs::into_json)
}

enum AnswerArgs {
    None,
    One(Box<RawValue>),
    Many(Vec<Box<RawValue>>),
}

impl AnswerArgs {
    fn into_json(self) -> Option<Box<RawValue>> {
        match self {
            Self::None => Some(RawValue::NULL.to_owned()),
            Self::One(arg) => Some(arg),
            // Written verbatim, as `read_args` writes a message's arguments.
            Self::Many(args) => serde_json::value::to_raw_value(&args).ok(),
        }
    }
}

impl<'de> serde::Deserialize<'de> for AnswerArgs {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct Args;

        impl<'de> Visitor<'de> for Args {
            type Value = AnswerArgs;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("the arguments of an acknowledgement")
            }

            fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
                // One argument, the usual answer, without a `Vec`.
                let Some(first) = seq.next_element::<Box<RawValue>>()? else {
                    return Ok(AnswerArgs::None);
                };
                let Some(second) = seq.next_element::<Box<RawValue>>()? else {
                    return Ok(AnswerArgs::One(first));
                };
                let mut args = vec![first, second];
                while let Some(arg) = seq.next_element()? {
                    args.push(arg);
                }
                Ok(AnswerArgs::Many(args))
            }
        }

        de.deserialize_seq(Args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Option<(String, String, Option<String>)> {
        read_args(text).map(|read| {
            (
                read.event,
                read.args.get().to_owned(),
                read.first.map(|first| first.get().to_owned()),
            )
        })
    }

    #[test]
    fn every_argument_is_read_verbatim() {
        assert_eq!(
            args(r#"["echo",{"b":1,"a":2.50}]"#),
            Some((
                "echo".into(),
                r#"[{"b":1,"a":2.50}]"#.into(),
                Some(r#"{"b":1,"a":2.50}"#.into())
            ))
        );
        assert_eq!(
            args(r#"["e",[1, 2],"x",{"y":[]}] "#),
            Some((
                "e".into(),
                r#"[[1, 2],"x",{"y":[]}]"#.into(),
                Some("[1, 2]".into())
            ))
        );
        assert_eq!(args(r#"["e"]"#), Some(("e".into(), "[]".into(), None)));
        assert_eq!(
            args(r#"["e", null]"#),
            Some(("e".into(), "[null]".into(), Some("null".into())))
        );
        assert_eq!(
            args(r#"["a\"b",1]"#),
            Some(("a\"b".into(), "[1]".into(), Some("1".into())))
        );
        assert_eq!(args("[]"), None);
        assert_eq!(args("[1,2]"), None);
        assert_eq!(args(r#"["e",1"#), None);
    }

    fn text(value: Value) -> String {
        match value {
            Value::Str(text, _) => text.as_str().to_owned(),
            Value::Bytes(_) => unreachable!(),
        }
    }

    #[test]
    fn frames_become_event_arguments_verbatim() {
        let event = |frame: &Frame| text(event_data(frame).unwrap());
        let data = RawValue::from_string(r#"{"b":1,"a":2.50}"#.into()).unwrap();
        let frame = Frame::event("echo", &data).unwrap();
        assert_eq!(event(&frame), r#"["echo",{"b":1,"a":2.50}]"#);
        assert_eq!(
            event(&Frame::event("a\"b", &[1]).unwrap()),
            r#"["a\"b",[1]]"#
        );
        assert_eq!(
            event(&Frame::args("e", &(1, "x")).unwrap()),
            r#"["e",1,"x"]"#
        );
        assert_eq!(
            event(&Frame::args("e", &Vec::<u8>::new()).unwrap()),
            r#"["e"]"#
        );
        // The recovery offset goes last, as Socket.IO's recovery sends it.
        let recorded = Frame::event("m", &"hi").unwrap().with_offset("ab-7");
        assert_eq!(event(&recorded), r#"["m","hi","ab-7"]"#);
        // Envelopes in another shape are parsed.
        for (text, expected) in [
            (r#"{"event":"e","data":1,"id":7}"#, r#"["e",1]"#),
            (r#"{"data":[1],"event":"e"}"#, r#"["e",[1]]"#),
            (r#"{ "event": "e" }"#, r#"["e",null]"#),
            (r#"{"event":"e","data":{"x":"}"}}"#, r#"["e",{"x":"}"}]"#),
            (r#"{"event":"e","args":[ 1 , 2 ],"id":7}"#, r#"["e",1 , 2]"#),
        ] {
            let frame = Frame::from_encoded(Bytes::from(text)).unwrap();
            assert_eq!(event(&frame), expected, "{text}");
        }
        assert!(event_data(&Frame::from_encoded(Bytes::from("[1]")).unwrap()).is_none());
    }

    #[test]
    fn answers_carry_the_arguments_only() {
        let answer = |frame: &Frame| text(answer_data(frame).unwrap());
        assert_eq!(answer(&Frame::event("e", &1).unwrap()), "[1]");
        assert_eq!(answer(&Frame::args("e", &(1, 2)).unwrap()), "[1,2]");
        assert_eq!(answer(&Frame::args("e", &Vec::<u8>::new()).unwrap()), "[]");
    }

    #[test]
    fn binary_frames_keep_placeholders_and_attachments() {
        let frame = Frame::args("file", &("a.bin", Bytes::from_static(&[1, 2]))).unwrap();
        let Value::Str(text, Some(attachments)) = event_data(&frame).unwrap() else {
            panic!("no attachments");
        };
        assert_eq!(
            text.as_str(),
            r#"["file","a.bin",{"_placeholder":true,"num":0}]"#
        );
        assert_eq!(attachments, [Bytes::from_static(&[1, 2])]);
        let packet = event_packet(&Str::from("/"), event_data(&frame).unwrap(), Some(3));
        assert_eq!(
            packet.text.as_str(),
            r#"51-3["file","a.bin",{"_placeholder":true,"num":0}]"#
        );
        let packet = event_packet(&Str::from("/x"), event_data(&frame).unwrap(), None);
        assert_eq!(
            packet.text.as_str(),
            r#"51-/x,["file","a.bin",{"_placeholder":true,"num":0}]"#
        );
    }

    #[test]
    fn packets_are_socketio_packets() {
        let ns = Str::from("/chat");
        assert_eq!(
            connect_packet(&ns, "00ff", Some("ab")).text.as_str(),
            r#"0/chat,{"sid":"00ff","pid":"ab"}"#
        );
        assert_eq!(
            connect_error_packet(&Str::from("/"), "no").text.as_str(),
            r#"4{"message":"no"}"#
        );
        assert_eq!(disconnect_packet(&ns).text.as_str(), "1/chat,");
        let data = answer_data(&Frame::event("e", &"ok").unwrap()).unwrap();
        assert_eq!(
            ack_packet(&ns, data, 12).text.as_str(),
            r#"3/chat,12["ok"]"#
        );
    }

    #[test]
    fn acknowledgement_answers_are_kept_as_written() {
        let answer = |text: &str| answer_json(text).map(|data| data.get().to_owned());
        assert_eq!(
            answer(r#"[{"z":1,"a":2.50}]"#).unwrap(),
            r#"{"z":1,"a":2.50}"#
        );
        assert_eq!(answer("[]").unwrap(), "null");
        assert_eq!(
            answer(r#"[1, "two",{"b":[3],"a":0}]"#).unwrap(),
            r#"[1,"two",{"b":[3],"a":0}]"#
        );
    }
}
