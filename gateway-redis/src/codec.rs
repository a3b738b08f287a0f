//! The wire format between instances: a small binary header, the selection as JSON, and the
//! frame's bytes exactly as the emitting instance encoded them (never parsed again).
//!
//! ```text
//! entry      (stream <prefix>#operations)  1 | uid u64 | 10 | seq u64 | path_len u16 | path | kind u8 | sel_len u32 | selection | frame or room
//! operation  (on <prefix>:<path>[#<room>]) 1 | uid u64 | kind u8 | sel_len u32 | selection | frame or room
//! flagged emit (kind 9)                    ... | selection | flags u8 | text_len u32 | text [| binary]
//! binary                                   bin_len u32 | text with placeholders | count u16 | (len u32 | bytes)*
//! request    (on <prefix>#request)         1 | uid u64 | 4 | after [16] | request u64 | path_len u16 | path | selection
//! response   (on <prefix>#response#<uid>)  1 | uid u64 | 5 | request u64 | clients JSON
//! ask        (on <prefix>#request)         1 | uid u64 | 6 | after [16] | request u64 | timeout_ms u32 | path_len u16 | path | sel_len u32 | selection | flagged frame
//! ack sent   (on <prefix>#response#<uid>)  1 | uid u64 | 7 | request u64 | count u32
//! ack answer (on <prefix>#response#<uid>)  1 | uid u64 | 8 | request u64 | client u64 | gone u8 | answer JSON
//! claim      (on <prefix>#request)         1 | uid u64 | 11 | request u64 | path_len u16 | path | claim JSON
//! offer      (on <prefix>#response#<uid>)  1 | uid u64 | 12 | request u64 | offer JSON (null: not here)
//! take       (on <prefix>#response#<uid>)  1 | uid u64 | 13 | request u64 | path_len u16 | path | take JSON
//! handed     (on <prefix>#response#<uid>)  1 | uid u64 | 14 | request u64 | found u8 | count u32 | (len u32 | flagged frame)*
//! ```
//!
//! In classic mode operations are entries of the prefix's stream: `seq` numbers one
//! instance's entries (1, 2, ...), so that an entry appended twice (again after a
//! reconnection, in case the Redis that took it lost it) is applied once. A request or an
//! ask carries `after`, the id of the last entry its sender appended before it (16 bytes:
//! milliseconds, sequence), and is answered only once that entry was applied: it sees every
//! operation before it, as on one channel. `seq` and `after` are written by the publisher
//! task, which alone knows them ([`SEQ`], [`AFTER`]).
//!
//! In per-room mode operations, requests and asks travel on `<prefix>:<path>` or on a room's
//! `<prefix>:<path>#<room>`, whose selection leaves the room out (the channel names it).
//!
//! A volatile frame (flag 1), one with binary attachments (flag 2) or one with a recovery
//! stamp (flag 4: origin u64 | seq u64 after the flags) is a flagged emit, so that the
//! receiving instances drop it for a full queue, send the attachments as such, or record it
//! with its stamp; any other emit is the frame's bytes alone. An ask carries its frame
//! flagged, binary attachments included.
//!
//! A claim, an offer, a take and a hand-over carry connection state recovery across
//! instances: the instance a client came back to claims its session from every instance,
//! the one holding it offers the client's id and rooms, is asked to take it (with what the
//! claimer had received from each instance), and hands over the frames the client missed.
//!
//! An ask is an emit that wants acknowledgements: each instance sends the frame to its
//! matching clients, answers `ack sent` with how many, then forwards each answer.
//!
//! Integers are big-endian. An empty selection (every client, no exclusions) is encoded as
//! `sel_len = 0`, so a plain broadcast costs 14 bytes on top of its frame.

use std::borrow::Cow;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use ws_gateway_core::adapter::{
    ClientInfo, Operation, Selection, SessionAnswer, SessionClaim, SessionOffer, Stamp,
};
use ws_gateway_core::{ClientId, Frame};

use crate::driver::StreamId;

const VERSION: u8 = 1;
const EMIT: u8 = 0;
const JOIN: u8 = 1;
const LEAVE: u8 = 2;
const DISCONNECT: u8 = 3;
const REQUEST: u8 = 4;
const RESPONSE: u8 = 5;
const ASK: u8 = 6;
const ACK_SENT: u8 = 7;
const ACK_ANSWER: u8 = 8;
const EMIT_FLAGGED: u8 = 9;
const ENTRY: u8 = 10;
const CLAIM: u8 = 11;
const OFFER: u8 = 12;
const TAKE: u8 = 13;
const HANDED: u8 = 14;

const VOLATILE: u8 = 1;
const BINARY: u8 = 2;
const STAMPED: u8 = 4;

/// Where an entry's `seq` is: the publisher task numbers entries as it appends them.
pub(crate) const SEQ: std::ops::Range<usize> = 10..18;
/// Where a request's or an ask's `after` is.
pub(crate) const AFTER: std::ops::Range<usize> = 10..26;

/// Why a payload could not be decoded (another version of the adapter, or foreign traffic
/// on our channels).
#[derive(Debug, thiserror::Error)]
pub(crate) enum DecodeError {
    #[error("truncated or unknown payload")]
    Malformed,
    #[error("bad selection: {0}")]
    Json(#[from] serde_json::Error),
    #[error("frame is not UTF-8")]
    Utf8(#[from] std::str::Utf8Error),
    #[error("bad client id")]
    ClientId,
}

/// What arrives on an instance's subscription.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// An operation from the prefix's stream, for the gateway it names.
    Entry {
        from: u64,
        seq: u64,
        path: String,
        selection: Selection,
        op: Operation,
        stamp: Option<Stamp>,
    },
    /// An operation for the gateway named by the channel.
    Operation {
        from: u64,
        selection: Selection,
        op: Operation,
        stamp: Option<Stamp>,
    },
    /// Another instance claims a session of gateway `path`.
    Claim {
        from: u64,
        request: u64,
        path: String,
        claim: SessionClaim,
    },
    /// An instance's answer to one of our claims.
    Offer {
        from: u64,
        request: u64,
        offer: SessionAnswer,
    },
    /// The claimer of a session we offered takes it, having received `seen`.
    Take {
        from: u64,
        request: u64,
        path: String,
        claim: SessionClaim,
        token: u64,
        seen: Vec<Stamp>,
    },
    /// The frames a session we took missed (`None`: it was not handed over).
    Handed {
        request: u64,
        frames: Option<Vec<Frame>>,
    },
    /// Another instance asks for the clients matching a selection.
    Request {
        from: u64,
        after: StreamId,
        request: u64,
        path: String,
        selection: Selection,
    },
    /// An answer to one of our requests.
    Response {
        from: u64,
        request: u64,
        clients: Vec<ClientInfo>,
    },
    /// Another instance emits a frame that wants acknowledgements.
    Ask {
        from: u64,
        after: StreamId,
        request: u64,
        timeout: Duration,
        path: String,
        selection: Selection,
        frame: Frame,
    },
    /// An instance sent one of our asks to this many clients.
    AckSent { request: u64, count: usize },
    /// A client of another instance answered one of our asks (`None`: it left first).
    AckAnswer {
        request: u64,
        client: ClientId,
        answer: Option<Box<RawValue>>,
    },
}

/// The selection as JSON: short keys, empty lists left out.
#[derive(Serialize, Deserialize, Default)]
struct WireSelection<'a> {
    #[serde(borrow, default, rename = "r", skip_serializing_if = "Vec::is_empty")]
    rooms: Vec<Cow<'a, str>>,
    #[serde(borrow, default, rename = "c", skip_serializing_if = "Vec::is_empty")]
    clients: Vec<Cow<'a, str>>,
    #[serde(borrow, default, rename = "xc", skip_serializing_if = "Vec::is_empty")]
    except_clients: Vec<Cow<'a, str>>,
    #[serde(borrow, default, rename = "xr", skip_serializing_if = "Vec::is_empty")]
    except_rooms: Vec<Cow<'a, str>>,
}

fn ids(ids: &[ClientId]) -> Vec<Cow<'static, str>> {
    ids.iter().map(|id| Cow::Owned(id.to_string())).collect()
}

fn parse_ids(ids: Vec<Cow<'_, str>>) -> Result<Vec<ClientId>, DecodeError> {
    ids.iter()
        .map(|id| id.parse().map_err(|_| DecodeError::ClientId))
        .collect()
}

fn owned(rooms: Vec<Cow<'_, str>>) -> Vec<Cow<'static, str>> {
    rooms
        .into_iter()
        .map(|r| Cow::Owned(r.into_owned()))
        .collect()
}

fn is_empty(selection: &Selection) -> bool {
    selection.is_everyone()
        && selection.except_clients.is_empty()
        && selection.except_rooms.is_empty()
}

fn write_selection(buf: &mut Vec<u8>, selection: &Selection) {
    if is_empty(selection) {
        return;
    }
    let wire = WireSelection {
        rooms: selection
            .rooms
            .iter()
            .map(|r| Cow::Borrowed(&**r))
            .collect(),
        clients: ids(&selection.clients),
        except_clients: ids(&selection.except_clients),
        except_rooms: selection
            .except_rooms
            .iter()
            .map(|r| Cow::Borrowed(&**r))
            .collect(),
    };
    // Strings and lists of strings always serialize.
    let _ = serde_json::to_writer(&mut *buf, &wire);
}

fn read_selection(json: &[u8]) -> Result<Selection, DecodeError> {
    let mut selection = Selection::default();
    if json.is_empty() {
        return Ok(selection);
    }
    let wire: WireSelection<'_> = serde_json::from_slice(json)?;
    selection.rooms = owned(wire.rooms);
    selection.clients = parse_ids(wire.clients)?;
    selection.except_clients = parse_ids(wire.except_clients)?;
    selection.except_rooms = owned(wire.except_rooms);
    Ok(selection)
}

fn header(uid: u64, kind: u8, capacity: usize) -> Vec<u8> {
    let mut buf = Vec::with_capacity(10 + capacity);
    buf.push(VERSION);
    buf.extend_from_slice(&uid.to_be_bytes());
    buf.push(kind);
    buf
}

/// Encodes an operation for the other instances.
pub(crate) fn encode_operation(
    uid: u64,
    selection: &Selection,
    op: &Operation,
    stamp: Option<Stamp>,
) -> Vec<u8> {
    let mut buf = Vec::new();
    write_operation(&mut buf, uid, None, selection, op, stamp);
    buf
}

/// Encodes an operation of gateway `path` as an entry of the prefix's stream, its `seq`
/// left for the publisher task to write.
pub(crate) fn encode_entry(
    uid: u64,
    path: &str,
    selection: &Selection,
    op: &Operation,
    stamp: Option<Stamp>,
) -> Vec<u8> {
    let mut buf = Vec::new();
    write_operation(&mut buf, uid, Some(path), selection, op, stamp);
    buf
}

fn write_operation(
    buf: &mut Vec<u8>,
    uid: u64,
    path: Option<&str>,
    selection: &Selection,
    op: &Operation,
    stamp: Option<Stamp>,
) {
    let (kind, body): (u8, Cow<'_, [u8]>) = match op {
        Operation::Emit(frame)
            if frame.is_volatile() || frame.binary().is_some() || stamp.is_some() =>
        {
            (EMIT_FLAGGED, Cow::Owned(flagged_frame(frame, stamp)))
        }
        Operation::Emit(frame) => (EMIT, Cow::Borrowed(&frame.as_bytes()[..])),
        Operation::Join(room) => (JOIN, Cow::Borrowed(room.as_bytes())),
        Operation::Leave(room) => (LEAVE, Cow::Borrowed(room.as_bytes())),
        Operation::Disconnect => (DISCONNECT, Cow::Borrowed(&[][..])),
        // A future operation this adapter does not know: sent as nothing, never applied.
        _ => (u8::MAX, Cow::Borrowed(&[][..])),
    };
    match path {
        Some(path) => {
            *buf = header(uid, ENTRY, 15 + path.len() + body.len());
            buf.extend_from_slice(&[0; 8]);
            write_path(buf, path);
            buf.push(kind);
        }
        None => *buf = header(uid, kind, 4 + body.len()),
    }
    let at = buf.len();
    buf.extend_from_slice(&[0; 4]);
    write_selection(buf, selection);
    let len = u32::try_from(buf.len() - at - 4).unwrap_or(u32::MAX);
    buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(&body);
}

fn write_path(buf: &mut Vec<u8>, path: &str) {
    let path = &path.as_bytes()[..path.len().min(usize::from(u16::MAX))];
    buf.extend_from_slice(&u16::try_from(path.len()).unwrap_or(u16::MAX).to_be_bytes());
    buf.extend_from_slice(path);
}

fn push_len(buf: &mut Vec<u8>, len: usize) {
    buf.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
}

/// A volatile, binary or stamped frame: its flags, its stamp, its text, and its binary form.
fn flagged_frame(frame: &Frame, stamp: Option<Stamp>) -> Vec<u8> {
    let binary = frame.binary();
    let mut flags = 0;
    if frame.is_volatile() {
        flags |= VOLATILE;
    }
    if binary.is_some() {
        flags |= BINARY;
    }
    if stamp.is_some() {
        flags |= STAMPED;
    }
    let text = frame.as_bytes();
    let mut buf = Vec::with_capacity(21 + text.len() * 2);
    buf.push(flags);
    if let Some(stamp) = stamp {
        buf.extend_from_slice(&stamp.origin.to_be_bytes());
        buf.extend_from_slice(&stamp.seq.to_be_bytes());
    }
    push_len(&mut buf, text.len());
    buf.extend_from_slice(text);
    if let Some(binary) = binary {
        push_len(&mut buf, binary.as_bytes().len());
        buf.extend_from_slice(binary.as_bytes());
        let attachments = binary.attachments();
        let count = attachments.len().min(usize::from(u16::MAX));
        buf.extend_from_slice(&u16::try_from(count).unwrap_or(u16::MAX).to_be_bytes());
        for attachment in &attachments[..count] {
            push_len(&mut buf, attachment.len());
            buf.extend_from_slice(attachment);
        }
    }
    buf
}

fn len_at(bytes: &[u8]) -> Result<(usize, &[u8]), DecodeError> {
    let (len, rest) = split(bytes, 4)?;
    let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]);
    Ok((
        usize::try_from(len).map_err(|_| DecodeError::Malformed)?,
        rest,
    ))
}

/// Reads what [`flagged_frame`] wrote; the frame shares `payload`'s bytes.
fn read_flagged_frame(payload: &Bytes, body: &[u8]) -> Result<(Frame, Option<Stamp>), DecodeError> {
    let (flags, rest) = split(body, 1)?;
    let (stamp, rest) = if flags[0] & STAMPED != 0 {
        let (origin, rest) = u64_at(rest)?;
        let (seq, rest) = u64_at(rest)?;
        (Some(Stamp::new(origin, seq)), rest)
    } else {
        (None, rest)
    };
    let (len, rest) = len_at(rest)?;
    let (text, rest) = split(rest, len)?;
    let mut frame = Frame::from_encoded(payload.slice_ref(text))?;
    if flags[0] & BINARY != 0 {
        let (len, rest) = len_at(rest)?;
        let (text, rest) = split(rest, len)?;
        let (count, mut rest) = split(rest, 2)?;
        let count = u16::from_be_bytes([count[0], count[1]]);
        let mut attachments = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            let (len, tail) = len_at(rest)?;
            let (attachment, tail) = split(tail, len)?;
            attachments.push(payload.slice_ref(attachment));
            rest = tail;
        }
        frame = frame.with_binary(payload.slice_ref(text), attachments)?;
    }
    if flags[0] & VOLATILE != 0 {
        frame = frame.volatile();
    }
    Ok((frame, stamp))
}

/// Encodes a `fetch_clients` request.
pub(crate) fn encode_request(uid: u64, request: u64, path: &str, selection: &Selection) -> Vec<u8> {
    let mut buf = header(uid, REQUEST, 26 + path.len());
    buf.extend_from_slice(&[0; 16]);
    buf.extend_from_slice(&request.to_be_bytes());
    write_path(&mut buf, path);
    write_selection(&mut buf, selection);
    buf
}

/// Encodes the answer to a `fetch_clients` request.
pub(crate) fn encode_response(uid: u64, request: u64, clients: &[ClientInfo]) -> Vec<u8> {
    let mut buf = header(uid, RESPONSE, 8 + 40 * clients.len());
    buf.extend_from_slice(&request.to_be_bytes());
    let list: Vec<(ClientId, &[String])> =
        clients.iter().map(|c| (c.id, c.rooms.as_slice())).collect();
    let _ = serde_json::to_writer(&mut buf, &list);
    buf
}

/// Encodes an emit that wants acknowledgements, for every other instance.
pub(crate) fn encode_ask(
    uid: u64,
    request: u64,
    timeout: Duration,
    path: &str,
    selection: &Selection,
    frame: &Frame,
) -> Vec<u8> {
    let mut buf = header(uid, ASK, 36 + path.len() + frame.as_bytes().len());
    buf.extend_from_slice(&[0; 16]);
    buf.extend_from_slice(&request.to_be_bytes());
    let millis = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
    buf.extend_from_slice(&millis.to_be_bytes());
    write_path(&mut buf, path);
    let at = buf.len();
    buf.extend_from_slice(&[0; 4]);
    write_selection(&mut buf, selection);
    let len = u32::try_from(buf.len() - at - 4).unwrap_or(u32::MAX);
    buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
    // Flagged: the question's binary attachments travel as such.
    buf.extend_from_slice(&flagged_frame(frame, None));
    buf
}

/// Encodes how many clients an instance sent an ask to.
pub(crate) fn encode_ack_sent(uid: u64, request: u64, count: usize) -> Vec<u8> {
    let mut buf = header(uid, ACK_SENT, 12);
    buf.extend_from_slice(&request.to_be_bytes());
    buf.extend_from_slice(&u32::try_from(count).unwrap_or(u32::MAX).to_be_bytes());
    buf
}

/// Encodes a client's answer to an ask (`None`: the client left before answering).
pub(crate) fn encode_ack_answer(
    uid: u64,
    request: u64,
    client: ClientId,
    answer: Option<&RawValue>,
) -> Vec<u8> {
    let data = answer.map_or("", RawValue::get);
    let mut buf = header(uid, ACK_ANSWER, 17 + data.len());
    buf.extend_from_slice(&request.to_be_bytes());
    buf.extend_from_slice(&client.as_u64().to_be_bytes());
    buf.push(u8::from(answer.is_none()));
    buf.extend_from_slice(data.as_bytes());
    buf
}

fn split(bytes: &[u8], at: usize) -> Result<(&[u8], &[u8]), DecodeError> {
    if bytes.len() < at {
        return Err(DecodeError::Malformed);
    }
    Ok(bytes.split_at(at))
}

fn u64_at(bytes: &[u8]) -> Result<(u64, &[u8]), DecodeError> {
    let (head, rest) = split(bytes, 8)?;
    let mut n = [0; 8];
    n.copy_from_slice(head);
    Ok((u64::from_be_bytes(n), rest))
}

fn id_at(bytes: &[u8]) -> Result<(StreamId, &[u8]), DecodeError> {
    let (head, rest) = split(bytes, 16)?;
    let mut id = [0; 16];
    id.copy_from_slice(head);
    Ok((StreamId::from_bytes(id), rest))
}

fn path_at(bytes: &[u8]) -> Result<(String, &[u8]), DecodeError> {
    let (len, rest) = split(bytes, 2)?;
    let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
    let (path, rest) = split(rest, len)?;
    Ok((std::str::from_utf8(path)?.to_owned(), rest))
}

/// Decodes an operation's kind, selection and body.
fn operation_at(
    payload: &Bytes,
    kind: u8,
    rest: &[u8],
) -> Result<(Selection, Operation, Option<Stamp>), DecodeError> {
    let (len, rest) = split(rest, 4)?;
    let mut n = [0; 4];
    n.copy_from_slice(len);
    let len = usize::try_from(u32::from_be_bytes(n)).map_err(|_| DecodeError::Malformed)?;
    let (selection, body) = split(rest, len)?;
    let selection = read_selection(selection)?;
    let room = || -> Result<Cow<'static, str>, DecodeError> {
        Ok(Cow::Owned(std::str::from_utf8(body)?.to_owned()))
    };
    let mut stamp = None;
    let op = match kind {
        EMIT => Operation::Emit(Frame::from_encoded(payload.slice_ref(body))?),
        EMIT_FLAGGED => {
            let (frame, stamped) = read_flagged_frame(payload, body)?;
            stamp = stamped;
            Operation::Emit(frame)
        }
        JOIN => Operation::Join(room()?),
        LEAVE => Operation::Leave(room()?),
        DISCONNECT => Operation::Disconnect,
        _ => return Err(DecodeError::Malformed),
    };
    Ok((selection, op, stamp))
}

/// Decodes what arrived on a subscription. A frame keeps sharing `payload`'s bytes.
pub(crate) fn decode(payload: &Bytes) -> Result<Incoming, DecodeError> {
    let (version, rest) = split(payload, 1)?;
    if version != [VERSION] {
        return Err(DecodeError::Malformed);
    }
    let (from, rest) = u64_at(rest)?;
    let (kind, rest) = split(rest, 1)?;
    match kind[0] {
        kind @ (EMIT | JOIN | LEAVE | DISCONNECT | EMIT_FLAGGED) => {
            let (selection, op, stamp) = operation_at(payload, kind, rest)?;
            Ok(Incoming::Operation {
                from,
                selection,
                op,
                stamp,
            })
        }
        ENTRY => {
            let (seq, rest) = u64_at(rest)?;
            let (path, rest) = path_at(rest)?;
            let (kind, rest) = split(rest, 1)?;
            let (selection, op, stamp) = operation_at(payload, kind[0], rest)?;
            Ok(Incoming::Entry {
                from,
                seq,
                path,
                selection,
                op,
                stamp,
            })
        }
        REQUEST => {
            let (after, rest) = id_at(rest)?;
            let (request, rest) = u64_at(rest)?;
            let (path, selection) = path_at(rest)?;
            Ok(Incoming::Request {
                from,
                after,
                request,
                path,
                selection: read_selection(selection)?,
            })
        }
        RESPONSE => {
            let (request, rest) = u64_at(rest)?;
            let list: Vec<(Cow<'_, str>, Vec<String>)> = serde_json::from_slice(rest)?;
            let clients = list
                .into_iter()
                .map(|(id, rooms)| {
                    let id = id.parse().map_err(|_| DecodeError::ClientId)?;
                    Ok(ClientInfo::new(id, rooms))
                })
                .collect::<Result<_, DecodeError>>()?;
            Ok(Incoming::Response {
                from,
                request,
                clients,
            })
        }
        ASK => {
            let (after, rest) = id_at(rest)?;
            let (request, rest) = u64_at(rest)?;
            let (millis, rest) = split(rest, 4)?;
            let millis = u32::from_be_bytes([millis[0], millis[1], millis[2], millis[3]]);
            let (path, rest) = path_at(rest)?;
            let (len, rest) = split(rest, 4)?;
            let len = usize::try_from(u32::from_be_bytes([len[0], len[1], len[2], len[3]]))
                .map_err(|_| DecodeError::Malformed)?;
            let (selection, frame) = split(rest, len)?;
            Ok(Incoming::Ask {
                from,
                after,
                request,
                timeout: Duration::from_millis(u64::from(millis)),
                path,
                selection: read_selection(selection)?,
                frame: read_flagged_frame(payload, frame)?.0,
            })
        }
        ACK_SENT => {
            let (request, rest) = u64_at(rest)?;
            let (count, _) = split(rest, 4)?;
            let count = u32::from_be_bytes([count[0], count[1], count[2], count[3]]);
            Ok(Incoming::AckSent {
                request,
                count: usize::try_from(count).map_err(|_| DecodeError::Malformed)?,
            })
        }
        ACK_ANSWER => {
            let (request, rest) = u64_at(rest)?;
            let (client, rest) = u64_at(rest)?;
            let (gone, data) = split(rest, 1)?;
            let client = ClientId::from_u64(client);
            let answer = match gone[0] {
                0 => Some(serde_json::from_slice::<Box<RawValue>>(data)?),
                _ => None,
            };
            Ok(Incoming::AckAnswer {
                request,
                client,
                answer,
            })
        }
        CLAIM => {
            let (request, rest) = u64_at(rest)?;
            let (path, rest) = path_at(rest)?;
            let claim: WireClaim<'_> = serde_json::from_slice(rest)?;
            Ok(Incoming::Claim {
                from,
                request,
                path,
                claim: claim.into_claim(),
            })
        }
        OFFER => {
            let (request, rest) = u64_at(rest)?;
            let offer = match rest {
                b"null" => SessionAnswer::NotHere,
                BUSY => SessionAnswer::Busy,
                offer => {
                    let offer: WireOffer = serde_json::from_slice(offer)?;
                    SessionAnswer::Offered(
                        SessionOffer::new(
                            offer.client.parse().map_err(|_| DecodeError::ClientId)?,
                            offer.rooms,
                        )
                        .state(offer.state)
                        .token(offer.token)
                        .received(stamps_of(&offer.received)),
                    )
                }
            };
            Ok(Incoming::Offer {
                from,
                request,
                offer,
            })
        }
        TAKE => {
            let (request, rest) = u64_at(rest)?;
            let (path, rest) = path_at(rest)?;
            let take: WireTake<'_> = serde_json::from_slice(rest)?;
            let seen = stamps_of(&take.seen);
            Ok(Incoming::Take {
                from,
                request,
                path,
                claim: take.claim.into_claim(),
                token: take.token,
                seen,
            })
        }
        HANDED => {
            let (request, rest) = u64_at(rest)?;
            let (found, rest) = split(rest, 1)?;
            if found[0] == 0 {
                return Ok(Incoming::Handed {
                    request,
                    frames: None,
                });
            }
            let (count, mut rest) = len_at(rest)?;
            let mut frames = Vec::with_capacity(count.min(4096));
            for _ in 0..count {
                let (len, tail) = len_at(rest)?;
                let (body, tail) = split(tail, len)?;
                frames.push(read_flagged_frame(payload, body)?.0);
                rest = tail;
            }
            Ok(Incoming::Handed {
                request,
                frames: Some(frames),
            })
        }
        _ => Err(DecodeError::Malformed),
    }
}

/// A session claim as JSON.
#[derive(Serialize, Deserialize)]
struct WireClaim<'a> {
    #[serde(borrow)]
    pid: Cow<'a, str>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    offset: Option<Cow<'a, str>>,
    #[serde(borrow)]
    uri: Cow<'a, str>,
    #[serde(borrow, default)]
    headers: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    /// The Socket.IO `auth` payload, JSON text.
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    auth: Option<Cow<'a, str>>,
    /// How long the claimer has been recording, in milliseconds.
    age: u64,
}

impl<'a> WireClaim<'a> {
    fn of(claim: &'a SessionClaim) -> Self {
        Self {
            pid: Cow::Borrowed(&claim.pid),
            offset: claim.offset.as_deref().map(Cow::Borrowed),
            uri: Cow::Borrowed(&claim.uri),
            headers: claim
                .headers
                .iter()
                .map(|(n, v)| (Cow::Borrowed(n.as_str()), Cow::Borrowed(v.as_str())))
                .collect(),
            auth: claim.auth.as_deref().map(Cow::Borrowed),
            age: u64::try_from(claim.recording_for.as_millis()).unwrap_or(u64::MAX),
        }
    }

    fn into_claim(self) -> SessionClaim {
        let mut claim = SessionClaim::new(
            &self.pid,
            self.offset.map(Cow::into_owned),
            self.uri.into_owned(),
        )
        .recording_for(Duration::from_millis(self.age));
        for (name, value) in &self.headers {
            claim = claim.header(name, value);
        }
        if let Some(auth) = &self.auth {
            claim = claim.auth(auth);
        }
        claim
    }
}

/// An answer to a claim that is busy (else the offer as JSON, or `null`: not here).
const BUSY: &[u8] = br#""busy""#;

#[derive(Serialize, Deserialize)]
struct WireOffer {
    client: String,
    rooms: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    state: Vec<(String, Box<RawValue>)>,
    #[serde(default)]
    token: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    received: Vec<(u64, u64)>,
}

/// Stamps as they travel in a JSON message: `[origin, seq]` pairs.
fn wire_stamps(stamps: &[Stamp]) -> Vec<(u64, u64)> {
    stamps.iter().map(|s| (s.origin, s.seq)).collect()
}

fn stamps_of(wire: &[(u64, u64)]) -> Vec<Stamp> {
    wire.iter()
        .map(|&(origin, seq)| Stamp::new(origin, seq))
        .collect()
}

#[derive(Serialize, Deserialize)]
struct WireTake<'a> {
    #[serde(borrow)]
    claim: WireClaim<'a>,
    seen: Vec<(u64, u64)>,
    token: u64,
}

/// Encodes a claim of session `claim.pid` of gateway `path`, for every instance.
pub(crate) fn encode_claim(uid: u64, request: u64, path: &str, claim: &SessionClaim) -> Vec<u8> {
    let mut buf = header(uid, CLAIM, 64 + path.len() + claim.uri.len());
    buf.extend_from_slice(&request.to_be_bytes());
    write_path(&mut buf, path);
    let _ = serde_json::to_writer(&mut buf, &WireClaim::of(claim));
    buf
}

/// Encodes an instance's answer to a claim.
pub(crate) fn encode_offer(uid: u64, request: u64, answer: &SessionAnswer) -> Vec<u8> {
    let mut buf = header(uid, OFFER, 64);
    buf.extend_from_slice(&request.to_be_bytes());
    match answer {
        SessionAnswer::Offered(offer) => {
            let wire = WireOffer {
                client: offer.client.to_string(),
                rooms: offer.rooms.clone(),
                state: offer.state.clone(),
                token: offer.token,
                received: wire_stamps(&offer.received),
            };
            let _ = serde_json::to_writer(&mut buf, &wire);
        }
        SessionAnswer::Busy => buf.extend_from_slice(BUSY),
        _ => buf.extend_from_slice(b"null"),
    }
    buf
}

/// Encodes the claimer's taking of an offered session, with what it had received.
pub(crate) fn encode_take(
    uid: u64,
    request: u64,
    path: &str,
    claim: &SessionClaim,
    token: u64,
    seen: &[Stamp],
) -> Vec<u8> {
    let mut buf = header(
        uid,
        TAKE,
        64 + path.len() + claim.uri.len() + 40 * seen.len(),
    );
    buf.extend_from_slice(&request.to_be_bytes());
    write_path(&mut buf, path);
    let take = WireTake {
        claim: WireClaim::of(claim),
        seen: wire_stamps(seen),
        token,
    };
    let _ = serde_json::to_writer(&mut buf, &take);
    buf
}

/// Encodes the frames a session handed over missed (`None`: not handed over).
pub(crate) fn encode_handed(uid: u64, request: u64, frames: Option<&[Frame]>) -> Vec<u8> {
    let size = frames.map_or(0, |f| f.iter().map(|f| f.as_bytes().len() + 9).sum());
    let mut buf = header(uid, HANDED, 13 + size);
    buf.extend_from_slice(&request.to_be_bytes());
    buf.push(u8::from(frames.is_some()));
    if let Some(frames) = frames {
        push_len(&mut buf, frames.len());
        for frame in frames {
            let body = flagged_frame(frame, None);
            push_len(&mut buf, body.len());
            buf.extend_from_slice(&body);
        }
    }
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> ClientId {
        format!("{n:016x}").parse().unwrap()
    }

    #[test]
    fn a_broadcast_is_the_frame_plus_fourteen_bytes() {
        let frame = Frame::event("m", &1).unwrap();
        let bytes = encode_operation(
            7,
            &Selection::default(),
            &Operation::Emit(frame.clone()),
            None,
        );
        assert_eq!(bytes.len(), frame.as_bytes().len() + 14);
        let Incoming::Operation {
            from,
            selection,
            op,
            ..
        } = decode(&Bytes::from(bytes)).unwrap()
        else {
            panic!("not an operation");
        };
        assert_eq!(from, 7);
        assert_eq!(selection, Selection::default());
        assert_eq!(op, Operation::Emit(frame));
    }

    #[test]
    fn volatile_and_binary_frames_round_trip() {
        let file = Bytes::from_static(&[0, 1, 255]);
        let frames = [
            Frame::event("pos", &[1, 2]).unwrap().volatile(),
            Frame::args("file", &("a", file.clone())).unwrap(),
            Frame::args("file", &("a", file)).unwrap().volatile(),
        ];
        for frame in frames {
            let bytes = encode_operation(
                2,
                &Selection::default(),
                &Operation::Emit(frame.clone()),
                None,
            );
            let Incoming::Operation { op, .. } = decode(&Bytes::from(bytes)).unwrap() else {
                panic!("not an operation");
            };
            assert_eq!(op, Operation::Emit(frame));
        }
        // Truncated attachments are refused.
        let frame = Frame::event("f", &Bytes::from_static(&[1; 8])).unwrap();
        let mut bytes = encode_operation(2, &Selection::default(), &Operation::Emit(frame), None);
        bytes.truncate(bytes.len() - 1);
        assert!(decode(&Bytes::from(bytes)).is_err());
    }

    #[test]
    fn selections_and_room_operations_round_trip() {
        let mut selection = Selection::default();
        selection.rooms = vec!["a".into(), "b\"c".into()];
        selection.clients = vec![id(1)];
        selection.except_clients = vec![id(u64::MAX)];
        selection.except_rooms = vec!["muted".into()];
        for op in [
            Operation::Join("vip".into()),
            Operation::Leave("vip".into()),
            Operation::Disconnect,
        ] {
            let bytes = encode_operation(1, &selection, &op, None);
            match decode(&Bytes::from(bytes)).unwrap() {
                Incoming::Operation {
                    selection: s,
                    op: o,
                    ..
                } => {
                    assert_eq!(s, selection);
                    assert_eq!(o, op);
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn requests_and_responses_round_trip() {
        let mut selection = Selection::default();
        selection.rooms = vec!["r".into()];
        match decode(&encode_request(3, 9, "/chat", &selection).into()).unwrap() {
            Incoming::Request {
                from,
                after,
                request,
                path,
                selection: s,
            } => {
                assert_eq!((from, request, path.as_str()), (3, 9, "/chat"));
                assert_eq!(after, StreamId::ZERO);
                assert_eq!(s, selection);
            }
            other => panic!("{other:?}"),
        }
        let clients = vec![ClientInfo::new(id(5), vec!["r".into()])];
        match decode(&encode_response(4, 9, &clients).into()).unwrap() {
            Incoming::Response {
                from,
                request,
                clients: c,
            } => {
                assert_eq!((from, request), (4, 9));
                assert_eq!(c, clients);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn entries_carry_their_path_and_the_seq_and_after_fields_sit_where_declared() {
        let mut selection = Selection::default();
        selection.rooms = vec!["r".into()];
        let frame = Frame::event("m", &1).unwrap();
        let mut bytes = encode_entry(
            7,
            "/chat",
            &selection,
            &Operation::Emit(frame.clone()),
            None,
        );
        bytes[SEQ].copy_from_slice(&42u64.to_be_bytes());
        match decode(&Bytes::from(bytes)).unwrap() {
            Incoming::Entry {
                from,
                seq,
                path,
                selection: s,
                op,
                ..
            } => {
                assert_eq!((from, seq, path.as_str()), (7, 42, "/chat"));
                assert_eq!(s, selection);
                assert_eq!(op, Operation::Emit(frame.clone()));
            }
            other => panic!("{other:?}"),
        }
        let id = StreamId::new(1_700_000_000_000, 5);
        let mut ask = encode_ask(1, 2, Duration::from_secs(1), "/p", &selection, &frame);
        ask[AFTER].copy_from_slice(&id.to_bytes());
        match decode(&Bytes::from(ask)).unwrap() {
            Incoming::Ask {
                after,
                request,
                path,
                ..
            } => assert_eq!((after, request, path.as_str()), (id, 2, "/p")),
            other => panic!("{other:?}"),
        }
        // A question with binary attachments keeps them.
        let binary = Frame::args("photo", &(bytes::Bytes::from_static(b"\x00\x01"),)).unwrap();
        assert!(binary.binary().is_some());
        let ask = encode_ask(1, 3, Duration::from_secs(1), "/p", &selection, &binary);
        match decode(&Bytes::from(ask)).unwrap() {
            Incoming::Ask { frame, .. } => assert_eq!(frame, binary),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn garbage_is_rejected_not_panicked_on() {
        for bytes in [
            &b""[..],
            b"\x02",
            b"\x01\0\0",
            b"\x01\0\0\0\0\0\0\0\x01\x00\xff\xff\xff\xff",
            b"\x01\0\0\0\0\0\0\0\x01\x09",
            b"\x01\0\0\0\0\0\0\0\x01\x00\0\0\0\0\xff",
        ] {
            assert!(decode(&Bytes::from_static(bytes)).is_err(), "{bytes:?}");
        }
    }

    #[test]
    fn a_stamped_emit_keeps_its_stamp_and_its_frame() {
        let frame = Frame::event("m", &"hi").unwrap();
        let stamp = Some(Stamp::new(0xdead_beef, 42));
        let bytes = encode_entry(
            3,
            "/chat",
            &Selection::default(),
            &Operation::Emit(frame.clone()),
            stamp,
        );
        let Incoming::Entry { op, stamp: got, .. } = decode(&Bytes::from(bytes)).unwrap() else {
            panic!("not an entry");
        };
        assert_eq!(op, Operation::Emit(frame));
        assert_eq!(got, stamp);
    }

    #[test]
    fn claims_offers_takes_and_hand_overs_round_trip() {
        let claim = SessionClaim::new("0a1b", Some("7.2".into()), "/chat?pid=0a1b".into())
            .header("authorization", "Bearer alice")
            .auth(r#"{"token":"t"}"#)
            .recording_for(Duration::from_millis(1500));
        let Incoming::Claim {
            from,
            request,
            path,
            claim: got,
        } = decode(&Bytes::from(encode_claim(1, 9, "/chat", &claim))).unwrap()
        else {
            panic!("not a claim");
        };
        assert_eq!((from, request, path.as_str()), (1, 9, "/chat"));
        assert_eq!(got, claim);

        let id: ClientId = "00000000000000aa".parse().unwrap();
        let nick = serde_json::value::to_raw_value("Al").unwrap();
        let offer = SessionOffer::new(id, vec!["lobby".into()])
            .state(vec![("Nick".into(), nick)])
            .received(vec![Stamp::new(3, 40)]);
        let Incoming::Offer { offer: got, .. } = decode(&Bytes::from(encode_offer(
            2,
            9,
            &SessionAnswer::Offered(offer.clone()),
        )))
        .unwrap() else {
            panic!("not an offer");
        };
        let SessionAnswer::Offered(got) = got else {
            panic!("not offered: {got:?}");
        };
        assert_eq!((got.client, &got.rooms), (offer.client, &offer.rooms));
        assert_eq!(got.state[0].0, "Nick");
        assert_eq!(got.received, [Stamp::new(3, 40)]);
        assert_eq!(got.state[0].1.get(), r#""Al""#);
        let Incoming::Offer { offer: none, .. } =
            decode(&Bytes::from(encode_offer(2, 9, &SessionAnswer::NotHere))).unwrap()
        else {
            panic!("not an offer");
        };
        assert!(matches!(none, SessionAnswer::NotHere));
        let Incoming::Offer { offer: busy, .. } =
            decode(&Bytes::from(encode_offer(2, 9, &SessionAnswer::Busy))).unwrap()
        else {
            panic!("not an offer");
        };
        assert!(matches!(busy, SessionAnswer::Busy));

        let seen = [Stamp::new(5, 10), Stamp::new(6, 1)];
        let Incoming::Take {
            claim: got,
            seen: got_seen,
            ..
        } = decode(&Bytes::from(encode_take(1, 10, "/chat", &claim, 4, &seen))).unwrap()
        else {
            panic!("not a take");
        };
        assert_eq!((got, got_seen.as_slice()), (claim, &seen[..]));

        let frames = [
            Frame::event("a", &1).unwrap().with_offset("3"),
            Frame::event("b", &[1, 2]).unwrap().volatile(),
        ];
        let Incoming::Handed { frames: got, .. } =
            decode(&Bytes::from(encode_handed(2, 10, Some(&frames)))).unwrap()
        else {
            panic!("not a hand-over");
        };
        assert_eq!(got.as_deref(), Some(&frames[..]));
        let Incoming::Handed { frames: none, .. } =
            decode(&Bytes::from(encode_handed(2, 10, None))).unwrap()
        else {
            panic!("not a hand-over");
        };
        assert!(none.is_none());
    }
}
