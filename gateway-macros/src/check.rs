//! The rules a gateway must follow, checked on the model before anything is generated: one
//! function per rule, each saying why the rule exists.
//!
//! Every rule reports into a [`Ctxt`] (serde's `internals/ctxt.rs`) and none stops the
//! others, so that all independent mistakes show in one compile; [`Ctxt::check`] is then
//! the one gate before generation.

use std::cell::RefCell;
use std::fmt::Display;

use proc_macro2::Span;
use quote::ToTokens;
use syn::{FnArg, ReturnType, Type};

use crate::ast::{GatewayImpl, GatewayStruct, Handler, Hook, Method, Unmarked};
use crate::attr::Helper;

/// The errors found in one macro invocation.
///
/// Dropping it with errors unchecked is a bug in this crate, so it panics then (as serde's
/// does): an error that was found must reach the user.
pub(crate) struct Ctxt {
    errors: RefCell<Option<Vec<syn::Error>>>,
}

impl Ctxt {
    pub(crate) fn new() -> Self {
        Self {
            errors: RefCell::new(Some(Vec::new())),
        }
    }

    /// Reports `message` on `tokens` (their first token, spanning to the last).
    pub(crate) fn error_spanned_by(&self, tokens: impl ToTokens, message: impl Display) {
        self.syn_error(syn::Error::new_spanned(tokens.into_token_stream(), message));
    }

    /// Reports `message` at `span`.
    pub(crate) fn error_at(&self, span: Span, message: impl Display) {
        self.syn_error(syn::Error::new(span, message));
    }

    /// Reports an error syn made (a parse error, say).
    pub(crate) fn syn_error(&self, err: syn::Error) {
        if let Some(errors) = self.errors.borrow_mut().as_mut() {
            errors.push(err);
        }
    }

    /// All errors reported, combined into one, in the order of the code they point at:
    /// rules run one after the other over the whole item, but the messages read top to
    /// bottom like the code.
    pub(crate) fn check(self) -> syn::Result<()> {
        let mut errors: Vec<syn::Error> = self
            .errors
            .borrow_mut()
            .take()
            .unwrap_or_default()
            .into_iter()
            .flatten()
            .collect();
        errors.sort_by_key(|err| {
            let start = err.span().start();
            (start.line, start.column)
        });
        let mut errors = errors.into_iter();
        let Some(mut combined) = errors.next() else {
            return Ok(());
        };
        for err in errors {
            combined.combine(err);
        }
        Err(combined)
    }
}

impl Drop for Ctxt {
    fn drop(&mut self) {
        if !std::thread::panicking() && self.errors.borrow().is_some() {
            panic!("gateway-macros dropped its errors unchecked: call `Ctxt::check`");
        }
    }
}

// The struct.

/// Every rule about `#[websocket_gateway(path = "...")] struct ...`.
pub(crate) fn gateway_struct(cx: &Ctxt, gateway: &GatewayStruct<'_>) {
    path_given(cx, gateway);
    path_given_once(cx, gateway);
    for path in &gateway.args.paths {
        path_well_formed(cx, &path.value);
    }
    struct_not_generic(cx, gateway);
    layers_not_on_struct(cx, gateway);
}

/// The path is the axum route the gateway is served at; there is no sensible default.
/// (Only when nothing was written: a malformed argument is reported where it is.)
fn path_given(cx: &Ctxt, gateway: &GatewayStruct<'_>) {
    if gateway.args.paths.is_empty() && !gateway.args.written {
        cx.error_at(
            Span::call_site(),
            "a gateway needs a path: write `#[websocket_gateway(path = \"/chat\")]`",
        );
    }
}

/// A gateway is mounted at one route; of two paths, one would be silently ignored. The
/// second is marked, on its key.
fn path_given_once(cx: &Ctxt, gateway: &GatewayStruct<'_>) {
    for path in gateway.args.paths.iter().skip(1) {
        cx.error_at(
            path.key.span,
            "`path` is given twice: a gateway is served at one path, remove this one",
        );
    }
}

/// A gateway path is one axum route (`/`, `/chat`, `/rooms/{id}`, `/files/{*path}`): the
/// upgrade handler is mounted there as is, and Socket.IO serves it as a namespace (a
/// dynamic one when it has parameters). Both route with matchit, so a path is written in
/// its syntax, restricted to what reads plainly: a parameter is a whole segment, a
/// wildcard the last one.
fn path_well_formed(cx: &Ctxt, lit: &syn::LitStr) {
    if let Some(problem) = path_problem(&lit.value()) {
        cx.error_at(lit.span(), problem);
    }
}

fn path_problem(path: &str) -> Option<String> {
    if !path.starts_with('/') {
        Some(format!("a gateway path starts with `/`: write \"/{path}\""))
    } else if path.chars().any(char::is_whitespace) {
        Some("a gateway path has no whitespace".to_owned())
    } else if path.contains(['?', '#']) {
        Some("a gateway path has no query or fragment: remove what follows `?` or `#`".to_owned())
    } else if path.len() > 1 && path.ends_with('/') {
        Some(format!(
            "remove the trailing `/`: write \"{}\"",
            path.trim_end_matches('/')
        ))
    } else if path.contains("//") {
        Some("a gateway path has no empty segment (`//`)".to_owned())
    } else {
        parameters_problem(path)
    }
}

/// The parameters of a path, `{name}` and a last `{*name}`, each with its own name.
fn parameters_problem(path: &str) -> Option<String> {
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let mut names = Vec::new();
    for (i, segment) in segments.iter().enumerate() {
        let written_as = |fixed: &str| {
            let mut fixed_path = segments.clone();
            fixed_path[i] = fixed;
            format!("/{}", fixed_path.join("/"))
        };
        if let Some(name) = segment.strip_prefix(':') {
            return Some(format!(
                "a path parameter is written in braces: write \"{}\"",
                written_as(&format!("{{{name}}}"))
            ));
        }
        if let Some(name) = segment.strip_prefix('*') {
            return Some(format!(
                "a wildcard is written in braces: write \"{}\"",
                written_as(&format!("{{*{name}}}"))
            ));
        }
        if !segment.contains(['{', '}', '*']) {
            continue;
        }
        let Some(inner) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) else {
            return Some(format!(
                "a path parameter is a whole segment, `{{name}}` between `/`s: `{segment}` is not one"
            ));
        };
        let (wildcard, name) = match inner.strip_prefix('*') {
            Some(name) => (true, name),
            None => (false, inner),
        };
        let is_ident = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !is_ident {
            return Some(format!(
                "a path parameter is named by an identifier, like `{{id}}` or `{{*rest}}`: `{segment}` is not one"
            ));
        }
        if wildcard && i + 1 != segments.len() {
            return Some(format!(
                "a wildcard takes the rest of the path: `{segment}` is the last segment"
            ));
        }
        if names.contains(&name) {
            return Some(format!(
                "path parameter `{name}` is named twice: give each parameter its own name"
            ));
        }
        names.push(name);
    }
    None
}

/// The registry builds one gateway per path from the app's providers: there is no place
/// a type parameter could come from.
fn struct_not_generic(cx: &Ctxt, gateway: &GatewayStruct<'_>) {
    if let Some(param) = gateway.node.generics.params.first() {
        cx.error_spanned_by(
            param,
            "a gateway cannot be generic: the registry builds one gateway per path",
        );
    }
}

/// `use_*` on the struct would read as if it applied, but only the `impl` block's
/// `#[websocket_gateway]` reads them.
fn layers_not_on_struct(cx: &Ctxt, gateway: &GatewayStruct<'_>) {
    for (helper, attr) in &gateway.misplaced {
        let name = helper.attribute();
        cx.error_spanned_by(
            attr,
            format!(
                "`#[{name}]` goes on the gateway's `impl` block, below `#[websocket_gateway]`, or on a `#[subscribe]` method"
            ),
        );
    }
}

// The impl block.

/// Every rule about `#[websocket_gateway] impl ... { .. }`.
pub(crate) fn gateway_impl(cx: &Ctxt, gateway: &GatewayImpl<'_>) {
    impl_is_inherent(cx, gateway);
    impl_not_generic(cx, gateway);
    helpers_on_methods(cx, gateway);
    for unmarked in &gateway.unmarked {
        layers_need_a_handler(cx, unmarked);
    }
    for handler in &gateway.handlers {
        event_not_empty(cx, handler);
        method_rules(cx, &handler.method);
    }
    for hook in &gateway.hooks {
        hook_has_no_layers(cx, hook);
        method_rules(cx, &hook.method);
    }
    events_unique(cx, &gateway.handlers);
    hooks_unique(cx, &gateway.hooks);
}

/// The rules every handler and hook method follows: the shim must be able to call it.
fn method_rules(cx: &Ctxt, method: &Method<'_>) {
    one_role_per_method(cx, method);
    method_not_generic(cx, method);
    receiver_is_shared_ref(cx, method);
    args_are_owned(cx, method);
    returns_owned(cx, method);
}

/// The handlers are the gateway's own methods: a trait impl cannot add methods, and the
/// tables are implemented once, from the inherent block.
fn impl_is_inherent(cx: &Ctxt, gateway: &GatewayImpl<'_>) {
    if let Some((_, trait_path, _)) = &gateway.node.trait_ {
        cx.error_spanned_by(
            trait_path,
            "put `#[websocket_gateway]` on the gateway's inherent `impl` block (`impl MyGateway { .. }`), not on a trait impl",
        );
    }
}

/// The tables are `'static` and name one concrete gateway type.
fn impl_not_generic(cx: &Ctxt, gateway: &GatewayImpl<'_>) {
    if let Some(param) = gateway.node.generics.params.first() {
        cx.error_spanned_by(param, "a gateway's `impl` block cannot be generic");
    }
}

/// A handler or hook is a method; on anything else the attribute would silently do
/// nothing.
fn helpers_on_methods(cx: &Ctxt, gateway: &GatewayImpl<'_>) {
    for attr in &gateway.stray {
        cx.error_spanned_by(
            attr,
            "this attribute goes on a method (`fn name(&self, ..)`)",
        );
    }
}

/// Pipes, guards, interceptors and filters wrap a handler call; on a plain method there is
/// none to wrap.
fn layers_need_a_handler(cx: &Ctxt, unmarked: &Unmarked<'_>) {
    for list in &unmarked.layers.lists {
        cx.error_spanned_by(
            &list.attr,
            format!(
                "`#[{}]` applies to a `#[subscribe(\"...\")]` handler: add one to `{}`",
                list.kind.attribute(),
                unmarked.node.sig.ident
            ),
        );
    }
}

/// Hooks run outside the request pipeline (there is no message to guard, pipe or reply
/// to), so layers on them would never run.
fn hook_has_no_layers(cx: &Ctxt, hook: &Hook<'_>) {
    for list in &hook.method.layers.lists {
        cx.error_spanned_by(
            &list.attr,
            format!(
                "`#[{}]` applies to `#[subscribe]` handlers; lifecycle hooks run without pipes, guards, interceptors or filters",
                list.kind.attribute()
            ),
        );
    }
}

/// A shim calls the method for one event or one hook; two roles would share one set of
/// layers and one reply, which is never what was meant.
fn one_role_per_method(cx: &Ctxt, method: &Method<'_>) {
    for (helper, attr) in &method.extra_roles {
        let message = match helper {
            Helper::Subscribe => {
                "a method handles one event: move this `#[subscribe]` to its own method"
            }
            _ => {
                "a method has one role: an event handler (`#[subscribe]`) or one lifecycle hook; split it into two methods"
            }
        };
        cx.error_spanned_by(attr, message);
    }
}

/// No client can send an event without a name.
fn event_not_empty(cx: &Ctxt, handler: &Handler<'_>) {
    let event = handler.event();
    if event.value().is_empty() {
        cx.error_at(event.span(), "the event name is empty");
    }
}

/// An event is dispatched to one handler. Two handlers under different `#[cfg]`s may be
/// alternatives (`feature = "v2"` and its negation), which only the compiler can tell: they
/// pass here, and the app builder rejects a true duplicate (`BuildError::DuplicateEvent`).
fn events_unique(cx: &Ctxt, handlers: &[Handler<'_>]) {
    for (n, handler) in handlers.iter().enumerate() {
        let event = handler.event();
        let first = handlers[..n].iter().find(|earlier| {
            earlier.event().value() == event.value()
                && !may_be_alternatives(&earlier.method, &handler.method)
        });
        if let Some(first) = first {
            cx.error_at(
                event.span(),
                format!(
                    "event \"{}\" is already handled by `{}`: a gateway has one handler per event",
                    event.value(),
                    first.method.ident()
                ),
            );
        }
    }
}

/// Whether two methods are under `#[cfg]`s that differ, as written.
fn may_be_alternatives(a: &Method<'_>, b: &Method<'_>) -> bool {
    let cfg = |method: &Method<'_>| {
        method
            .cfg
            .iter()
            .map(|attr| attr.to_token_stream().to_string())
            .collect::<Vec<_>>()
    };
    !a.cfg.is_empty() && !b.cfg.is_empty() && cfg(a) != cfg(b)
}

/// The runtime has one slot per hook kind.
fn hooks_unique(cx: &Ctxt, hooks: &[Hook<'_>]) {
    for (n, hook) in hooks.iter().enumerate() {
        if let Some(first) = hooks[..n].iter().find(|earlier| earlier.kind == hook.kind) {
            cx.error_spanned_by(
                hook.method.ident(),
                format!(
                    "`#[{}]` is already on `{}`: a gateway has one",
                    hook.kind.attribute(),
                    first.method.ident()
                ),
            );
        }
    }
}

/// The shim is a plain `fn` pointer in a static table: nothing can choose a type
/// parameter.
fn method_not_generic(cx: &Ctxt, method: &Method<'_>) {
    if let Some(param) = method.node.sig.generics.params.first() {
        cx.error_spanned_by(
            param,
            "a handler cannot be generic: name the argument types",
        );
    }
}

/// One gateway value serves every client at once, shared behind an `Arc`.
fn receiver_is_shared_ref(cx: &Ctxt, method: &Method<'_>) {
    let sig = &method.node.sig;
    match sig.receiver() {
        Some(receiver) if receiver.reference.is_some() && receiver.mutability.is_none() => {}
        Some(receiver) => cx.error_spanned_by(
            receiver,
            "a handler takes `&self`: one gateway serves every client, so keep mutable state behind a `Mutex` or an atomic",
        ),
        None => cx.error_spanned_by(
            &sig.ident,
            format!("`{}` needs `&self` as its first parameter", sig.ident),
        ),
    }
}

/// Arguments are made from the message when it arrives and moved into the call (an async
/// handler outlives the frame it came in), so nothing can be borrowed; an `impl Trait`
/// argument names no type to make.
fn args_are_owned(cx: &Ctxt, method: &Method<'_>) {
    for input in &method.node.sig.inputs {
        let FnArg::Typed(typed) = input else {
            continue;
        };
        match &*typed.ty {
            Type::Reference(r) => cx.error_spanned_by(
                r,
                "a handler argument is an owned value: take `String` for `&str`, `Vec<T>` for `&[T]`, `T` for `&T`",
            ),
            Type::ImplTrait(t) => cx.error_spanned_by(
                t,
                "`impl Trait` arguments are not supported: name the type",
            ),
            _ => {}
        }
    }
}

/// The reply is encoded after the call returns, when nothing the method borrowed is alive.
fn returns_owned(cx: &Ctxt, method: &Method<'_>) {
    if let ReturnType::Type(_, ty) = &method.node.sig.output
        && let Type::Reference(r) = &**ty
        && !matches!(&r.lifetime, Some(l) if l.ident == "static")
    {
        cx.error_spanned_by(
            r,
            "a handler returns an owned value (or `&'static`): the reply is sent after the call returns",
        );
    }
}

// The helper attributes on their own.

/// `#[subscribe]`, a hook or a `use_*` attribute that no `#[websocket_gateway]` consumed:
/// it would otherwise do nothing, silently. `item` is what it was put on, if it parses.
pub(crate) fn helper_outside_gateway(
    cx: &Ctxt,
    helper: Helper,
    has_args: bool,
    item: Option<&syn::Item>,
) {
    let name = helper.attribute();
    let message = match helper {
        Helper::Subscribe | Helper::Hook(_) => {
            let attribute = if has_args {
                format!("#[{name}(...)]")
            } else {
                format!("#[{name}]")
            };
            format!(
                "`{attribute}` works on a method of an `impl` block marked `#[websocket_gateway]`: add `#[websocket_gateway]` to the `impl` block"
            )
        }
        Helper::Layer(_) => match item {
            Some(syn::Item::Impl(_)) => {
                format!("`#[{name}]` on an `impl` block needs `#[websocket_gateway]` on it too")
            }
            Some(syn::Item::Struct(_)) => format!(
                "`#[{name}]` goes on the gateway's `impl` block, below `#[websocket_gateway]`, or on a `#[subscribe]` method"
            ),
            _ => format!(
                "`#[{name}]` works on a `#[subscribe]` method or on the `impl` block of a `#[websocket_gateway]`"
            ),
        },
    };
    cx.error_at(Span::call_site(), message);
}

#[cfg(test)]
mod tests {
    use proc_macro2::TokenStream;
    use syn::ItemImpl;

    use super::*;
    use crate::ast::{GatewayImpl, GatewayStruct};

    /// The messages the impl form reports for `source`, each with the text it points at,
    /// in order.
    fn impl_errors(source: &str) -> Vec<(String, String)> {
        let mut item: ItemImpl = syn::parse_str(source).unwrap();
        let cx = Ctxt::new();
        let stripped = GatewayImpl::strip(&mut item);
        let gateway = GatewayImpl::from_ast(&cx, &item, TokenStream::new(), stripped);
        gateway_impl(&cx, &gateway);
        match cx.check() {
            Ok(()) => Vec::new(),
            Err(err) => err
                .into_iter()
                .map(|e| {
                    let text = e.span().source_text().unwrap_or_default();
                    (e.to_string(), text)
                })
                .collect(),
        }
    }

    #[test]
    fn the_second_path_is_the_one_marked() {
        let item: syn::ItemStruct = syn::parse_str("pub struct G;").unwrap();
        let args: TokenStream = "path = \"/a\", path = \"/b\"".parse().unwrap();
        let cx = Ctxt::new();
        let gateway = GatewayStruct::from_ast(&cx, &item, args, Vec::new());
        gateway_struct(&cx, &gateway);
        let err = cx.check().unwrap_err();
        assert_eq!(
            err.to_string(),
            "`path` is given twice: a gateway is served at one path, remove this one"
        );
        // The key of the second `path = ..`: columns 13 to 17 (from 0) of the arguments.
        let span = err.span();
        assert_eq!(span.source_text().as_deref(), Some("path"));
        assert_eq!((span.start().column, span.end().column), (13, 17));
    }

    #[test]
    fn accepts_fixed_paths_and_parameters() {
        for path in [
            "/",
            "/chat",
            "/v1/chat",
            "/a-b_c.d",
            "/rooms/{id}",
            "/t/{tenant}/rooms/{room_id}",
            "/files/{*path}",
            "/{*rest}",
            "/{_x1}",
        ] {
            assert_eq!(path_problem(path), None, "{path}");
        }
    }

    #[test]
    fn rejects_paths_axum_cannot_serve_as_one_route() {
        for (path, message) in [
            ("chat", "a gateway path starts with `/`: write \"/chat\""),
            ("", "a gateway path starts with `/`: write \"/\""),
            ("/chat room", "a gateway path has no whitespace"),
            (
                "/chat?x=1",
                "a gateway path has no query or fragment: remove what follows `?` or `#`",
            ),
            ("/chat/", "remove the trailing `/`: write \"/chat\""),
            ("/a//b", "a gateway path has no empty segment (`//`)"),
        ] {
            assert_eq!(path_problem(path).as_deref(), Some(message), "{path}");
        }
    }

    #[test]
    fn rejects_parameters_matchit_reads_otherwise() {
        for (path, message) in [
            (
                "/rooms/:id/chat",
                "a path parameter is written in braces: write \"/rooms/{id}/chat\"",
            ),
            (
                "/files/*path",
                "a wildcard is written in braces: write \"/files/{*path}\"",
            ),
            (
                "/rooms/{id",
                "a path parameter is a whole segment, `{name}` between `/`s: `{id` is not one",
            ),
            (
                "/rooms/r{id}",
                "a path parameter is a whole segment, `{name}` between `/`s: `r{id}` is not one",
            ),
            (
                "/rooms/{id}.json",
                "a path parameter is a whole segment, `{name}` between `/`s: `{id}.json` is not one",
            ),
            (
                "/a*b",
                "a path parameter is a whole segment, `{name}` between `/`s: `a*b` is not one",
            ),
            (
                "/rooms/{}",
                "a path parameter is named by an identifier, like `{id}` or `{*rest}`: `{}` is not one",
            ),
            (
                "/rooms/{1st}",
                "a path parameter is named by an identifier, like `{id}` or `{*rest}`: `{1st}` is not one",
            ),
            (
                "/rooms/{*}",
                "a path parameter is named by an identifier, like `{id}` or `{*rest}`: `{*}` is not one",
            ),
            (
                "/files/{*path}/meta",
                "a wildcard takes the rest of the path: `{*path}` is the last segment",
            ),
            (
                "/a/{id}/b/{id}",
                "path parameter `id` is named twice: give each parameter its own name",
            ),
        ] {
            assert_eq!(path_problem(path).as_deref(), Some(message), "{path}");
        }
    }

    #[test]
    fn a_right_gateway_passes() {
        let errors = impl_errors(
            r#"impl G {
                #[subscribe("a")]
                #[use_pipes(ValidationPipe)]
                async fn a(&self, client: Client, body: Body) -> Value { body }
                #[handle_connection]
                fn hello(&self) {}
                fn plain(&mut self) {}
            }"#,
        );
        assert_eq!(errors, []);
    }

    #[test]
    fn every_mistake_is_reported_in_code_order_on_its_token() {
        let errors = impl_errors(
            r#"impl G {
                #[subscribe("a")]
                fn first(&mut self) {}
                #[subscribe("a")]
                fn second(&self, text: &str) {}
                #[use_guards(Allow)]
                fn plain(&self) {}
            }"#,
        );
        let errors: Vec<_> = errors
            .iter()
            .map(|(m, t)| (m.as_str(), t.as_str()))
            .collect();
        assert_eq!(
            errors,
            [
                (
                    "a handler takes `&self`: one gateway serves every client, so keep mutable state behind a `Mutex` or an atomic",
                    "&mut self",
                ),
                (
                    "event \"a\" is already handled by `first`: a gateway has one handler per event",
                    "\"a\"",
                ),
                (
                    "a handler argument is an owned value: take `String` for `&str`, `Vec<T>` for `&[T]`, `T` for `&T`",
                    "&str",
                ),
                (
                    "`#[use_guards]` applies to a `#[subscribe(\"...\")]` handler: add one to `plain`",
                    "#[use_guards(Allow)]",
                ),
            ]
        );
    }

    #[test]
    fn handlers_behind_cfg_may_share_an_event() {
        let errors = impl_errors(
            r#"impl G {
                #[cfg(feature = "v2")]
                #[subscribe("a")]
                fn v2(&self) {}
                #[cfg(not(feature = "v2"))]
                #[subscribe("a")]
                fn v1(&self) {}
                #[subscribe("a")]
                fn always(&self) {}
                #[cfg(feature = "v2")]
                #[subscribe("a")]
                fn v2_again(&self) {}
            }"#,
        );
        let message = |first: &str| {
            format!(
                "event \"a\" is already handled by `{first}`: a gateway has one handler per event"
            )
        };
        assert_eq!(
            errors,
            [
                (message("v2"), "\"a\"".to_owned()),
                (message("v2"), "\"a\"".to_owned()),
            ]
        );
    }

    #[test]
    fn a_method_has_one_role() {
        let errors = impl_errors(
            r#"impl G {
                #[subscribe("a")]
                #[subscribe("b")]
                #[handle_connection]
                fn many(&self) {}
            }"#,
        );
        let texts: Vec<_> = errors.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(texts, ["#[subscribe(\"b\")]", "#[handle_connection]"]);
    }
}
