//! The attributes of the gateway macros as typed values: which helper an attribute is, and
//! what its arguments say.
//!
//! Parsing never stops at the first mistake: each one is reported into the [`Ctxt`] on the
//! user's tokens and parsing goes on, so that every bad attribute shows in one compile (the
//! aim serde's `internals/attr.rs` states). Each argument keeps its key token beside its
//! value, so that "`path` given twice" marks the second one.

use proc_macro2::{TokenStream, TokenTree};
use syn::parse::{ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{Attribute, Expr, Ident, LitStr, Meta, Token};

use crate::check::Ctxt;

mod kw {
    syn::custom_keyword!(path);
}

/// The attributes `#[websocket_gateway]` reads inside its `impl` block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Helper {
    Subscribe,
    Hook(HookKind),
    Layer(LayerKind),
}

impl Helper {
    /// Which helper `attr` is, by the last segment of its path, so that
    /// `#[ws_gateway_core::subscribe(..)]` is recognized as well as `#[subscribe(..)]`.
    pub(crate) fn of(attr: &Attribute) -> Option<Self> {
        let name = attr.path().segments.last()?.ident.to_string();
        Some(match name.as_str() {
            "subscribe" => Self::Subscribe,
            "after_init" => Self::Hook(HookKind::AfterInit),
            "handle_connection" => Self::Hook(HookKind::HandleConnection),
            "handle_disconnect" => Self::Hook(HookKind::HandleDisconnect),
            "use_pipes" => Self::Layer(LayerKind::Pipes),
            "use_guards" => Self::Layer(LayerKind::Guards),
            "use_interceptors" => Self::Layer(LayerKind::Interceptors),
            "use_filters" => Self::Layer(LayerKind::Filters),
            _ => return None,
        })
    }

    /// The attribute's name, as users write it.
    pub(crate) fn attribute(self) -> &'static str {
        match self {
            Self::Subscribe => "subscribe",
            Self::Hook(kind) => kind.attribute(),
            Self::Layer(kind) => kind.attribute(),
        }
    }
}

/// The four `use_*` attributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LayerKind {
    Pipes,
    Guards,
    Interceptors,
    Filters,
}

impl LayerKind {
    pub(crate) fn attribute(self) -> &'static str {
        match self {
            Self::Pipes => "use_pipes",
            Self::Guards => "use_guards",
            Self::Interceptors => "use_interceptors",
            Self::Filters => "use_filters",
        }
    }

    /// What goes in the list, for messages: "pipe", "guard", ...
    fn item(self) -> &'static str {
        match self {
            Self::Pipes => "pipe",
            Self::Guards => "guard",
            Self::Interceptors => "interceptor",
            Self::Filters => "exception filter",
        }
    }
}

/// The lifecycle hooks, in the order they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HookKind {
    AfterInit,
    HandleConnection,
    HandleDisconnect,
}

impl HookKind {
    pub(crate) fn attribute(self) -> &'static str {
        match self {
            Self::AfterInit => "after_init",
            Self::HandleConnection => "handle_connection",
            Self::HandleDisconnect => "handle_disconnect",
        }
    }
}

/// Whether `attr` is `#[websocket_gateway]` (by the last segment of its path).
pub(crate) fn is_gateway_attr(attr: &Attribute) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|s| s.ident == "websocket_gateway")
}

/// Whether `attr` is `#[cfg(..)]`, which the expansion copies onto what it generates for
/// the item.
pub(crate) fn is_cfg(attr: &Attribute) -> bool {
    attr.path().is_ident("cfg")
}

/// A key and its value, as written: `path = "/chat"`.
pub(crate) struct KeyValue<K, V> {
    pub(crate) key: K,
    pub(crate) value: V,
}

/// The arguments of `#[websocket_gateway(path = "/chat")]` on a struct.
#[derive(Default)]
pub(crate) struct StructArgs {
    /// Every `path = ".."` written: one, if the gateway is right.
    pub(crate) paths: Vec<KeyValue<kw::path, LitStr>>,
    /// Whether anything was written between the parentheses (a malformed argument is
    /// reported where it is, not as a missing one).
    pub(crate) written: bool,
}

impl StructArgs {
    /// Reads `key = value, ..`; every malformed or repeated argument is reported, and the
    /// others are still read.
    pub(crate) fn parse(cx: &Ctxt, tokens: TokenStream) -> Self {
        let mut args = Self {
            written: !tokens.is_empty(),
            ..Self::default()
        };
        let parser = |input: ParseStream<'_>| {
            while !input.is_empty() {
                if let Err(err) = args.parse_one(input) {
                    cx.syn_error(err);
                    skip_to_comma(input)?;
                }
                if !input.is_empty() {
                    input.parse::<Token![,]>()?;
                }
            }
            Ok(())
        };
        if let Err(err) = parser.parse2(tokens) {
            cx.syn_error(err);
        }
        args
    }

    /// The path, the first one if several were given.
    pub(crate) fn path(&self) -> Option<&LitStr> {
        self.paths.first().map(|path| &path.value)
    }

    fn parse_one(&mut self, input: ParseStream<'_>) -> syn::Result<()> {
        if input.peek(Token![crate]) {
            // Read before the expansion (see `crate_in`); here only checked.
            parse_crate(input)?;
            return Ok(());
        }
        if input.peek(kw::path) {
            let key: kw::path = input.parse()?;
            input.parse::<Token![=]>()?;
            let value: LitStr = input.parse().map_err(|err| {
                syn::Error::new(
                    err.span(),
                    "expected a string literal: write `path = \"/chat\"`",
                )
            })?;
            self.paths.push(KeyValue { key, value });
            return Ok(());
        }
        if input.peek(LitStr) {
            let lit: LitStr = input.parse()?;
            return Err(syn::Error::new(
                lit.span(),
                format!(
                    "name the argument: `#[websocket_gateway(path = {:?})]`",
                    lit.value()
                ),
            ));
        }
        if input.peek(Ident) {
            let key: Ident = input.parse()?;
            return Err(syn::Error::new(
                key.span(),
                format!(
                    "unknown argument `{key}`: `#[websocket_gateway]` on a struct takes `path = \"/...\"` (and `crate = \"...\"`)"
                ),
            ));
        }
        Err(input.error("expected `path = \"/...\"`"))
    }
}

/// Checks the arguments of `#[websocket_gateway]` on an `impl` block: nothing, or
/// `crate = ".."` (read before the expansion, see [`crate_in`]). Anything else is reported:
/// the path belongs to the struct.
pub(crate) fn check_impl_args(cx: &Ctxt, tokens: TokenStream) {
    let parser = |input: ParseStream<'_>| {
        while !input.is_empty() {
            if input.peek(Token![crate]) {
                if let Err(err) = parse_crate(input) {
                    cx.syn_error(err);
                    skip_to_comma(input)?;
                }
            } else {
                let rest: TokenStream = input.parse()?;
                cx.error_spanned_by(
                        &rest,
                        "the path goes on the struct: `#[websocket_gateway(path = \"/...\")] struct ...`; \
                         the `impl` block takes `#[websocket_gateway]` alone (or with `crate = \"...\"`)",
                    );
                return Ok(());
            }
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        Ok(())
    };
    if let Err(err) = parser.parse2(tokens) {
        cx.syn_error(err);
    }
}

/// `crate = "path"`, serde's way of naming a re-exported framework.
fn parse_crate(input: ParseStream<'_>) -> syn::Result<syn::Path> {
    input.parse::<Token![crate]>()?;
    input.parse::<Token![=]>()?;
    let lit: LitStr = input.parse().map_err(|err| {
        syn::Error::new(
            err.span(),
            "expected a string literal: write `crate = \"my_crate::gateway\"`",
        )
    })?;
    lit.parse::<syn::Path>().map_err(|_| {
        syn::Error::new(
            lit.span(),
            "expected a path to the crate that re-exports the framework: `crate = \"my_crate::gateway\"`",
        )
    })
}

/// The `crate = ".."` of a `#[websocket_gateway(..)]` attribute, if it has one that reads
/// (a malformed one is reported where that attribute expands).
pub(crate) fn crate_of(attr: &Attribute) -> Option<syn::Path> {
    match &attr.meta {
        Meta::List(list) => crate_in(&list.tokens),
        _ => None,
    }
}

/// The `crate = ".."` among the arguments of `#[websocket_gateway(..)]`, if one reads.
pub(crate) fn crate_in(args: &TokenStream) -> Option<syn::Path> {
    let parser = |input: ParseStream<'_>| {
        let mut found = None;
        while !input.is_empty() {
            if input.peek(Token![crate]) {
                found = parse_crate(input).ok();
            }
            skip_to_comma(input)?;
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        Ok(found)
    };
    parser.parse2(args.clone()).ok().flatten()
}

/// Skips the rest of a malformed argument, up to the next `,`.
fn skip_to_comma(input: ParseStream<'_>) -> syn::Result<()> {
    while !input.is_empty() && !input.peek(Token![,]) {
        input.parse::<TokenTree>()?;
    }
    Ok(())
}

/// `#[subscribe("event")]`.
pub(crate) struct Subscribe {
    pub(crate) event: LitStr,
}

impl Subscribe {
    /// Reads the event name; `None` (with the mistake reported) if there is none to read.
    pub(crate) fn parse(cx: &Ctxt, attr: &Attribute) -> Option<Self> {
        let usage = "write the event name: `#[subscribe(\"message\")]`";
        let Meta::List(list) = &attr.meta else {
            cx.error_spanned_by(attr, usage);
            return None;
        };
        let parser = |input: ParseStream<'_>| {
            let event: LitStr = input.parse().map_err(|err| {
                syn::Error::new(err.span(), format!("expected a string literal: {usage}"))
            })?;
            if !input.is_empty() {
                let rest: TokenStream = input.parse()?;
                return Err(syn::Error::new_spanned(
                    rest,
                    format!(
                        "a method handles one event: write `#[subscribe({})]` and give the other events their own methods",
                        event.token()
                    ),
                ));
            }
            Ok(event)
        };
        match parser.parse2(list.tokens.clone()) {
            Ok(event) => Some(Self { event }),
            Err(err) => {
                cx.syn_error(err);
                None
            }
        }
    }
}

/// `#[after_init]`, `#[handle_connection]` or `#[handle_disconnect]` takes no arguments:
/// any are reported, and the hook is kept.
pub(crate) fn parse_hook(cx: &Ctxt, kind: HookKind, attr: &Attribute) -> HookKind {
    if !matches!(attr.meta, Meta::Path(_)) {
        let name = kind.attribute();
        cx.error_spanned_by(
            attr,
            format!("`#[{name}]` takes no arguments: write `#[{name}]`"),
        );
    }
    kind
}

/// `#[use_guards(A, B::new(1))]`: expressions, each evaluated to a value.
pub(crate) struct LayerList {
    pub(crate) kind: LayerKind,
    pub(crate) attr: Attribute,
    pub(crate) exprs: Vec<Expr>,
}

impl LayerList {
    /// Reads the list; an empty or unreadable one is reported and reads as empty.
    pub(crate) fn parse(cx: &Ctxt, kind: LayerKind, attr: Attribute) -> Self {
        let exprs = match &attr.meta {
            Meta::List(list) => {
                match list.parse_args_with(Punctuated::<Expr, Token![,]>::parse_terminated) {
                    Ok(exprs) if exprs.is_empty() => None,
                    Ok(exprs) => Some(exprs.into_iter().collect()),
                    Err(err) => {
                        cx.syn_error(err);
                        Some(Vec::new())
                    }
                }
            }
            _ => None,
        };
        let exprs = exprs.unwrap_or_else(|| {
            cx.error_spanned_by(
                &attr,
                format!(
                    "list at least one {}: `#[{}(...)]`",
                    kind.item(),
                    kind.attribute()
                ),
            );
            Vec::new()
        });
        Self { kind, attr, exprs }
    }
}

#[cfg(test)]
mod tests {
    use quote::quote;
    use syn::parse_quote;

    use super::*;

    /// The messages a parse reported, each with the text of the tokens it points at.
    fn reported<T>(parse: impl FnOnce(&Ctxt) -> T) -> (T, Vec<String>) {
        let cx = Ctxt::new();
        let value = parse(&cx);
        let messages = match cx.check() {
            Ok(()) => Vec::new(),
            Err(err) => err.into_iter().map(|e| e.to_string()).collect(),
        };
        (value, messages)
    }

    #[test]
    fn struct_args_read_the_path() {
        let (args, errors) = reported(|cx| StructArgs::parse(cx, quote!(path = "/chat")));
        assert_eq!(errors, Vec::<String>::new());
        assert_eq!(args.path().map(LitStr::value).as_deref(), Some("/chat"));
    }

    #[test]
    fn struct_args_report_every_mistake_and_keep_the_rest() {
        let (args, errors) = reported(|cx| {
            StructArgs::parse(
                cx,
                quote!(paht = "/a", path = "/chat", path = 1, "/c", path = "/d"),
            )
        });
        assert_eq!(
            errors,
            [
                "unknown argument `paht`: `#[websocket_gateway]` on a struct takes `path = \"/...\"` (and `crate = \"...\"`)",
                "expected a string literal: write `path = \"/chat\"`",
                "name the argument: `#[websocket_gateway(path = \"/c\")]`",
            ]
        );
        let paths: Vec<_> = args.paths.iter().map(|p| p.value.value()).collect();
        assert_eq!(paths, ["/chat", "/d"]);
        assert_eq!(args.path().map(LitStr::value).as_deref(), Some("/chat"));
    }

    #[test]
    fn subscribe_takes_one_string_literal() {
        let (event, errors) =
            reported(|cx| Subscribe::parse(cx, &parse_quote!(#[subscribe("events")])));
        assert_eq!(errors, Vec::<String>::new());
        assert_eq!(event.map(|s| s.event.value()).as_deref(), Some("events"));

        for (attr, message) in [
            (
                parse_quote!(#[subscribe]),
                "write the event name: `#[subscribe(\"message\")]`",
            ),
            (
                parse_quote!(#[subscribe(message)]),
                "expected a string literal: write the event name: `#[subscribe(\"message\")]`",
            ),
            (
                parse_quote!(#[subscribe("a", "b")]),
                "a method handles one event: write `#[subscribe(\"a\")]` and give the other events their own methods",
            ),
        ] {
            let (event, errors) = reported(|cx| Subscribe::parse(cx, &attr));
            assert!(event.is_none());
            assert_eq!(errors, [message]);
        }
    }

    #[test]
    fn layer_lists_need_an_entry() {
        let (list, errors) = reported(|cx| {
            LayerList::parse(
                cx,
                LayerKind::Guards,
                parse_quote!(#[use_guards(A, B::new(1))]),
            )
        });
        assert_eq!(errors, Vec::<String>::new());
        assert_eq!(list.exprs.len(), 2);

        let (list, errors) =
            reported(|cx| LayerList::parse(cx, LayerKind::Pipes, parse_quote!(#[use_pipes()])));
        assert!(list.exprs.is_empty());
        assert_eq!(errors, ["list at least one pipe: `#[use_pipes(...)]`"]);
    }

    #[test]
    fn hooks_take_no_arguments() {
        let (hook, errors) =
            reported(|cx| parse_hook(cx, HookKind::AfterInit, &parse_quote!(#[after_init(now)])));
        assert_eq!(hook, HookKind::AfterInit);
        assert_eq!(
            errors,
            ["`#[after_init]` takes no arguments: write `#[after_init]`"]
        );
    }
}
