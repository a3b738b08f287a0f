//! An [AsyncAPI 3.0](https://www.asyncapi.com/docs/reference/specification/v3.0.0) document
//! generated from the gateways of an app: a channel per gateway path, an operation per
//! subscribed event (the client sends, the server receives) with its reply, and message
//! payloads whose `data` is described by the JSON Schema of the handler's body and reply
//! types (derive [`schemars::JsonSchema`] on them; other types read as "any JSON"). A
//! gateway path with parameters (`/rooms/{id}`) is the channel's address, each parameter
//! in its `parameters`.

use std::fmt::Write as _;

use serde_json::{Map, Value, json};

use crate::App;

/// The `info` of the document.
///
/// # Examples
///
/// ```
/// use ws_gateway_core::asyncapi::Info;
///
/// let info = Info::new("Chat", "1.0.0").description("Rooms and messages");
/// assert_eq!(info.title, "Chat");
/// assert_eq!(info.description.as_deref(), Some("Rooms and messages"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Info {
    /// The API's title.
    pub title: String,
    /// The API's version.
    pub version: String,
    /// What it is, in a sentence or two.
    pub description: Option<String>,
}

impl Info {
    /// `title` at `version`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::asyncapi::Info;
    ///
    /// let info = Info::new("Chat", "1.0.0");
    /// assert_eq!((info.title.as_str(), info.version.as_str()), ("Chat", "1.0.0"));
    /// assert!(info.description.is_none());
    /// ```
    pub fn new(title: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            version: version.into(),
            description: None,
        }
    }

    /// With a description.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::asyncapi::Info;
    ///
    /// let info = Info::new("Chat", "1.0.0").description("Rooms and messages");
    /// assert_eq!(info.description.as_deref(), Some("Rooms and messages"));
    /// ```
    #[must_use]
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }
}

/// The AsyncAPI 3.0 document of every gateway of `app`.
///
/// # Examples
///
/// ```
/// use ws_gateway_core::asyncapi::{Info, document};
/// use ws_gateway_core::prelude::*;
///
/// #[derive(serde::Deserialize, schemars::JsonSchema)]
/// struct Join {
///     room: String,
/// }
///
/// #[websocket_gateway(path = "/rooms")]
/// struct RoomGateway;
///
/// #[websocket_gateway]
/// impl RoomGateway {
///     #[subscribe("join")]
///     fn join(&self, client: Client, body: Join) -> Result<WsResponse<String>, RoomError> {
///         client.join(body.room.clone())?;
///         Ok(WsResponse::new("joined", body.room))
///     }
/// }
///
/// let app = GatewayApp::new().gateway::<RoomGateway>().build().unwrap();
/// let doc = document(&app, &Info::new("Rooms", "1.0.0"));
/// assert_eq!(doc["asyncapi"], "3.0.0");
/// assert_eq!(doc["channels"]["rooms"]["address"], "/rooms");
/// assert_eq!(doc["operations"]["rooms.join"]["action"], "receive");
/// let data = &doc["components"]["messages"]["rooms.join"]["payload"]["properties"]["data"];
/// assert_eq!(data["$ref"], "#/components/schemas/Join");
/// assert_eq!(doc["components"]["schemas"]["Join"]["required"][0], "room");
/// ```
pub fn document(app: &App, info: &Info) -> Value {
    let mut settings = schemars::generate::SchemaSettings::draft07();
    settings.definitions_path = "/components/schemas/".into();
    settings.meta_schema = None;
    let mut generator = schemars::SchemaGenerator::new(settings);

    let mut channels = Map::new();
    let mut operations = Map::new();
    let mut messages = Map::new();
    for gateway in app.gateways() {
        let channel = channel_id(gateway.path());
        let mut channel_messages = Map::new();
        for handler in gateway.describe(&mut generator) {
            let request = format!("{channel}.{}", handler.event);
            messages.insert(
                request.clone(),
                message(handler.event, handler.doc.body.as_ref(), "request"),
            );
            channel_messages.insert(
                handler.event.to_owned(),
                json!({"$ref": format!("#/components/messages/{request}")}),
            );
            let mut operation = json!({
                "action": "receive",
                "channel": {"$ref": format!("#/channels/{channel}")},
                "summary": format!("`{}` handles `{}`", handler.method, handler.event),
                "messages": [{"$ref": format!("#/channels/{channel}/messages/{}", handler.event)}],
            });
            if let Some(reply) = &handler.doc.reply {
                let reply_id = format!("{request}.reply");
                let reply_key = format!("{}.reply", handler.event);
                messages.insert(
                    reply_id.clone(),
                    message(handler.event, Some(reply), "reply"),
                );
                channel_messages.insert(
                    reply_key.clone(),
                    json!({"$ref": format!("#/components/messages/{reply_id}")}),
                );
                operation["reply"] = json!({
                    "channel": {"$ref": format!("#/channels/{channel}")},
                    "messages": [{"$ref": format!("#/channels/{channel}/messages/{reply_key}")}],
                });
            }
            operations.insert(request, operation);
        }
        // The answer to an acknowledgement the server asked for (`emit_with_ack`).
        let answer_id = format!("{channel}.ack");
        messages.insert(answer_id.clone(), ack_answer());
        channel_messages.insert(
            "ack".to_owned(),
            json!({"$ref": format!("#/components/messages/{answer_id}")}),
        );
        operations.insert(
            answer_id.clone(),
            json!({
                "action": "receive",
                "channel": {"$ref": format!("#/channels/{channel}")},
                "summary": "a client answers an acknowledgement the server asked for",
                "messages": [{"$ref": format!("#/channels/{channel}/messages/ack")}],
            }),
        );
        let mut description = format!(
            "The `{}` gateway: JSON text frames `{{\"event\": ..., \"data\": ...}}` over a WebSocket at `{}`. Failures arrive as event `exception`. A frame the server sends with `\"ack\": N` (a positive integer never reused on the connection) asks for an acknowledgement: the client answers `{{\"ack\": N, \"data\": ...}}`, without `event`; unknown, repeated and late answers are ignored.",
            gateway.name(),
            gateway.path()
        );
        if let Some(recovery) = gateway.recovery() {
            let _ = write!(
                description,
                " Connection state recovery is on, with a window of {} s: the first frame of every connection is `session`, every frame delivered through an emit, a room or a broadcast carries `\"offset\": O` (an opaque string; direct replies to a request carry none), and a client that dropped reconnects within the window with the query parameters `pid=P&offset=O` (the last offset it received; without `offset` when it received none) to keep its client id, rooms, identity and state and receive every frame it missed, in order, before live traffic.",
                recovery.window().as_secs_f64()
            );
            let session_id = format!("{channel}.session");
            messages.insert(session_id.clone(), session_message());
            channel_messages.insert(
                "session".to_owned(),
                json!({"$ref": format!("#/components/messages/{session_id}")}),
            );
            operations.insert(
                session_id,
                json!({
                    "action": "send",
                    "channel": {"$ref": format!("#/channels/{channel}")},
                    "summary": "the first frame of every connection: the session's private id, and whether it was recovered",
                    "messages": [{"$ref": format!("#/channels/{channel}/messages/session")}],
                }),
            );
        }
        let mut channel_value = json!({
            "address": gateway.path(),
            "title": gateway.name(),
            "description": description,
            "messages": channel_messages,
        });
        let parameters = parameters(gateway.path());
        if !parameters.is_empty() {
            channel_value["parameters"] = Value::Object(parameters);
        }
        channels.insert(channel.clone(), channel_value);
    }
    let mut info_value = json!({"title": info.title, "version": info.version});
    if let Some(description) = &info.description {
        info_value["description"] = json!(description);
    }
    let schemas: Map<String, Value> = generator.definitions().clone();
    json!({
        "asyncapi": "3.0.0",
        "info": info_value,
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": messages,
            "schemas": schemas,
        },
    })
}

/// A channel id from a path: `/chat` → `chat`, `/v1/chat` → `v1.chat`, `/` → `root`,
/// `/rooms/{id}` → `rooms.id`.
fn channel_id(path: &str) -> String {
    let id = path
        .trim_matches('/')
        .replace('/', ".")
        .replace(['{', '}', '*'], "");
    if id.is_empty() { "root".to_owned() } else { id }
}

/// The channel's `parameters`: one per `{name}` (or `{*rest}`) segment of its address.
fn parameters(path: &str) -> Map<String, Value> {
    crate::path_params::names(path)
        .map(|name| {
            let description = if path.contains(&format!("{{*{name}}}")) {
                "The rest of the client's path, `/`s included, percent-decoded: read by `WsParam`."
                    .to_owned()
            } else {
                format!(
                    "The `{name}` segment of the client's path, percent-decoded: read by `WsParam`."
                )
            };
            (name.to_owned(), json!({"description": description}))
        })
        .collect()
}

/// `{"event": "session", "data": {"pid": P, "recovered": bool}}`: recovery's first frame.
fn session_message() -> Value {
    json!({
        "name": "session",
        "title": "session (the first frame, with recovery on)",
        "contentType": "application/json",
        "payload": {
            "type": "object",
            "properties": {
                "event": {"type": "string", "const": "session"},
                "data": {
                    "type": "object",
                    "properties": {
                        "pid": {
                            "type": "string",
                            "description": "The session's private id: present it as the `pid` query parameter to recover. Never sent to anyone else; not the client id.",
                        },
                        "recovered": {
                            "type": "boolean",
                            "description": "Whether this connection recovered the session `pid` names (its rooms, state and missed frames); `false` for a fresh session.",
                        },
                    },
                    "required": ["pid", "recovered"],
                },
            },
            "required": ["event", "data"],
        },
    })
}

/// `{"ack": N, "data": ...}`: a client's answer to `{"event":..,"data":..,"ack":N}`.
fn ack_answer() -> Value {
    json!({
        "name": "ack",
        "title": "answer to an acknowledgement",
        "contentType": "application/json",
        "payload": {
            "type": "object",
            "properties": {
                "ack": {"type": "integer", "minimum": 1},
                "data": {},
            },
            "required": ["ack"],
        },
    })
}

fn message(event: &str, data: Option<&Value>, kind: &str) -> Value {
    let mut properties = json!({"event": {"type": "string", "const": event}});
    if let Some(data) = data {
        properties["data"] = data.clone();
    }
    json!({
        "name": event,
        "title": format!("{event} ({kind})"),
        "contentType": "application/json",
        "payload": {
            "type": "object",
            "properties": properties,
            "required": ["event"],
        },
    })
}

#[cfg(test)]
mod tests {
    use super::channel_id;

    #[test]
    fn channel_ids_are_valid_keys() {
        assert_eq!(channel_id("/chat"), "chat");
        assert_eq!(channel_id("/v1/chat"), "v1.chat");
        assert_eq!(channel_id("/"), "root");
        assert_eq!(
            channel_id("/t/{tenant}/files/{*path}"),
            "t.tenant.files.path"
        );
    }

    #[test]
    fn parameters_are_those_of_the_address() {
        let parameters = super::parameters("/t/{tenant}/files/{*path}");
        assert_eq!(parameters.len(), 2);
        assert!(
            parameters["tenant"]["description"]
                .as_str()
                .unwrap()
                .contains("`tenant`")
        );
        assert!(
            parameters["path"]["description"]
                .as_str()
                .unwrap()
                .starts_with("The rest")
        );
        assert!(super::parameters("/chat").is_empty());
    }
}
