//! [`ValidationPipe`]: runs `validator::Validate` on a message body.

use std::borrow::Cow;
use std::collections::BTreeMap;

use validator::{Validate, ValidationError, ValidationErrors, ValidationErrorsKind};

use super::Pipe;
use crate::dispatch::Context;
use crate::exception::WsException;

/// Validates a message body with its `validator::Validate` derive, NestJS's
/// `ValidationPipe`.
///
/// On failure the client gets one exception frame that says which field failed and why,
/// with paths for nested structs and list items (NestJS only says "Validation failed"):
///
/// ```json
/// {"event":"exception","data":{"status":"error","message":"Validation failed",
///  "errors":{"text":["length must be between 1 and 500"],"items[2].name":["is required"]}}}
/// ```
///
/// # Examples
///
/// ```
/// use ws_gateway_core::prelude::*;
/// use ws_gateway_core::ValidationPipe;
/// use validator::Validate;
///
/// #[derive(serde::Deserialize, Validate)]
/// struct SendMessage {
///     #[validate(length(min = 1, max = 500))]
///     text: String,
/// }
///
/// #[websocket_gateway(path = "/say")]
/// struct SayGateway;
///
/// #[websocket_gateway]
/// impl SayGateway {
///     #[subscribe("say")]
///     #[use_pipes(ValidationPipe)]
///     fn say(&self, body: SendMessage) -> String {
///         body.text
///     }
/// }
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct ValidationPipe;

/// The message of a failed validation, as NestJS words it.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use ws_gateway_core::prelude::*;
/// use ws_gateway_core::Handshake;
/// use ws_gateway_core::pipe::VALIDATION_FAILED;
/// use validator::Validate;
///
/// #[derive(serde::Deserialize, Validate)]
/// struct Name {
///     #[validate(length(min = 1))]
///     name: String,
/// }
///
/// #[websocket_gateway(path = "/doc-validation-failed")]
/// struct Names;
///
/// #[websocket_gateway]
/// impl Names {
///     #[subscribe("name")]
///     #[use_pipes(ValidationPipe)]
///     fn name(&self, body: Name) -> String {
///         body.name
///     }
/// }
///
/// let app = GatewayApp::new().gateway::<Names>().build().unwrap();
/// let gw = &app.gateways()[0];
/// let (client, _queue) = gw.open(Handshake::default(), 8);
/// let answer = gw.handle_json(&client, r#"{"event":"name","data":{"name":""}}"#).answer().await;
/// let frame = answer.frame().unwrap().as_str();
/// assert!(frame.starts_with(&format!(r#"{{"event":"exception","data":{{"status":"error","message":"{VALIDATION_FAILED}""#)));
/// # }
/// ```
pub const VALIDATION_FAILED: &str = "Validation failed";

#[diagnostic::do_not_recommend]
impl<T: Validate> Pipe<T> for ValidationPipe {
    fn transform(&self, value: T, cx: &Context<'_>) -> Result<T, WsException> {
        match value.validate() {
            Ok(()) => Ok(value),
            Err(errors) => {
                let mut fields = BTreeMap::new();
                flatten(&errors, "", &mut fields);
                tracing::debug!(target: "gateway::rejection", event = cx.event(), ?fields, "validation failed");
                Err(
                    WsException::of_kind(crate::ErrorKind::Validation, VALIDATION_FAILED)
                        .with("errors", fields),
                )
            }
        }
    }
}

/// Collects every field error under its path: `a.b`, `items[2].name`.
fn flatten(errors: &ValidationErrors, prefix: &str, out: &mut BTreeMap<String, Vec<String>>) {
    for (field, kind) in errors.errors() {
        let path = if prefix.is_empty() {
            field.to_string()
        } else {
            format!("{prefix}.{field}")
        };
        match kind {
            ValidationErrorsKind::Field(list) => {
                out.entry(path)
                    .or_default()
                    .extend(list.iter().map(describe));
            }
            ValidationErrorsKind::Struct(inner) => flatten(inner, &path, out),
            ValidationErrorsKind::List(items) => {
                for (index, inner) in items {
                    flatten(inner, &format!("{path}[{index}]"), out);
                }
            }
        }
    }
}

/// A human sentence for one error: its own message when the derive gave one.
fn describe(error: &ValidationError) -> String {
    if let Some(message) = &error.message {
        return message.to_string();
    }
    let param = |name: &str| error.params.get(name).map(|v| v.to_string());
    match error.code.as_ref() {
        "length" => match (param("min"), param("max"), param("equal")) {
            (_, _, Some(equal)) => format!("length must be exactly {equal}"),
            (Some(min), Some(max), _) => format!("length must be between {min} and {max}"),
            (Some(min), None, _) => format!("length must be at least {min}"),
            (None, Some(max), _) => format!("length must be at most {max}"),
            (None, None, None) => "has an invalid length".to_owned(),
        },
        "range" => match (param("min"), param("max")) {
            (Some(min), Some(max)) => format!("must be between {min} and {max}"),
            (Some(min), None) => format!("must be at least {min}"),
            (None, Some(max)) => format!("must be at most {max}"),
            (None, None) => "is out of range".to_owned(),
        },
        "email" => "must be a valid email address".to_owned(),
        "url" => "must be a valid URL".to_owned(),
        "regex" => "has an invalid format".to_owned(),
        "required" => "is required".to_owned(),
        "contains" => match param("pattern") {
            Some(pattern) => format!("must contain {pattern}"),
            None => "does not contain the required text".to_owned(),
        },
        "does_not_contain" => match param("pattern") {
            Some(pattern) => format!("must not contain {pattern}"),
            None => "contains forbidden text".to_owned(),
        },
        "must_match" => match param("other") {
            Some(other) => format!("must match {}", other.trim_matches('"')),
            None => "does not match".to_owned(),
        },
        code => Cow::Borrowed(code).into_owned(),
    }
}
