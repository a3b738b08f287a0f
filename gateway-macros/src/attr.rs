//! The attributes of the gateway macros: which one an attribute is, and what its arguments
//! say. Every parser reports a mistake on the user's tokens and names the fix.

use proc_macro2::Span;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Attribute, Expr, LitStr, Token};

mod kw {
    syn::custom_keyword!(path);
}

/// The attributes `#[websocket_gateway]` reads inside its `impl` block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Helper {
    Subscribe,
    AfterInit,
    HandleConnection,
    HandleDisconnect,
    Layer(LayerKind),
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

impl Helper {
    /// Which helper `attr` is, by the last segment of its path, so that
    /// `#[gateway_core::subscribe(..)]` is recognized as well as `#[subscribe(..)]`.
    pub(crate) fn of(attr: &Attribute) -> Option<Self> {
        let name = attr.path().segments.last()?.ident.to_string();
        Some(match name.as_str() {
            "subscribe" => Self::Subscribe,
            "after_init" => Self::AfterInit,
            "handle_connection" => Self::HandleConnection,
            "handle_disconnect" => Self::HandleDisconnect,
            "use_pipes" => Self::Layer(LayerKind::Pipes),
            "use_guards" => Self::Layer(LayerKind::Guards),
            "use_interceptors" => Self::Layer(LayerKind::Interceptors),
            "use_filters" => Self::Layer(LayerKind::Filters),
            _ => return None,
        })
    }

    pub(crate) fn hook(self) -> Option<HookKind> {
        match self {
            Self::AfterInit => Some(HookKind::AfterInit),
            Self::HandleConnection => Some(HookKind::HandleConnection),
            Self::HandleDisconnect => Some(HookKind::HandleDisconnect),
            _ => None,
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

/// The arguments of `#[websocket_gateway(path = "/chat")]` on a struct.
pub(crate) struct GatewayArgs {
    pub(crate) path: LitStr,
}

impl GatewayArgs {
    /// Parses the arguments; `span` is the attribute's, for "missing path".
    pub(crate) fn parse(tokens: proc_macro2::TokenStream, span: Span) -> syn::Result<Self> {
        if tokens.is_empty() {
            return Err(syn::Error::new(
                span,
                "a gateway needs a path: write `#[websocket_gateway(path = \"/chat\")]`",
            ));
        }
        let args: Self = syn::parse2(tokens)?;
        check_path(&args.path)?;
        Ok(args)
    }
}

impl Parse for GatewayArgs {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let lookahead = input.lookahead1();
        if !lookahead.peek(kw::path) {
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
            return Err(lookahead.error());
        }
        input.parse::<kw::path>()?;
        input.parse::<Token![=]>()?;
        let path: LitStr = input.parse()?;
        input.parse::<Option<Token![,]>>()?;
        if !input.is_empty() {
            return Err(
                input.error("unexpected argument: `#[websocket_gateway]` takes only `path`")
            );
        }
        Ok(Self { path })
    }
}

/// A gateway path is a fixed axum route: `/`, `/chat`, `/v1/chat`.
fn check_path(lit: &LitStr) -> syn::Result<()> {
    let path = lit.value();
    let problem = if !path.starts_with('/') {
        Some(format!("a gateway path starts with `/`: write \"/{path}\""))
    } else if path.chars().any(char::is_whitespace) {
        Some("a gateway path has no whitespace".to_owned())
    } else if path.contains(['?', '#']) {
        Some("a gateway path has no query or fragment: remove what follows `?` or `#`".to_owned())
    } else if path.contains(['{', '}', '*']) || path.split('/').any(|s| s.starts_with(':')) {
        Some("a gateway path is fixed: route parameters and wildcards are not supported".to_owned())
    } else if path.len() > 1 && path.ends_with('/') {
        Some(format!(
            "remove the trailing `/`: write \"{}\"",
            path.trim_end_matches('/')
        ))
    } else if path.contains("//") {
        Some("a gateway path has no empty segment (`//`)".to_owned())
    } else {
        None
    };
    match problem {
        Some(message) => Err(syn::Error::new(lit.span(), message)),
        None => Ok(()),
    }
}

/// The event of `#[subscribe("event")]`.
pub(crate) fn parse_event(attr: &Attribute) -> syn::Result<LitStr> {
    let usage = "write the event name: `#[subscribe(\"message\")]`";
    let event: LitStr = match &attr.meta {
        syn::Meta::List(list) => syn::parse2(list.tokens.clone()).map_err(|err| {
            syn::Error::new(err.span(), format!("expected a string literal: {usage}"))
        })?,
        _ => return Err(syn::Error::new_spanned(attr, usage)),
    };
    if event.value().is_empty() {
        return Err(syn::Error::new(event.span(), "the event name is empty"));
    }
    Ok(event)
}

/// A hook attribute takes no arguments.
pub(crate) fn check_no_args(attr: &Attribute, hook: HookKind) -> syn::Result<()> {
    match &attr.meta {
        syn::Meta::Path(_) => Ok(()),
        _ => Err(syn::Error::new_spanned(
            attr,
            format!(
                "`#[{}]` takes no arguments: write `#[{}]`",
                hook.attribute(),
                hook.attribute()
            ),
        )),
    }
}

/// The list of `#[use_guards(A, B::new(1))]`: expressions, each evaluated to a value.
pub(crate) fn parse_layer_list(attr: &Attribute, kind: LayerKind) -> syn::Result<Vec<Expr>> {
    let usage = format!(
        "list at least one {}: `#[{}(...)]`",
        kind.item(),
        kind.attribute()
    );
    let syn::Meta::List(list) = &attr.meta else {
        return Err(syn::Error::new_spanned(attr, usage));
    };
    let exprs = list.parse_args_with(Punctuated::<Expr, Token![,]>::parse_terminated)?;
    if exprs.is_empty() {
        return Err(syn::Error::new_spanned(attr, usage));
    }
    Ok(exprs.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path_error(path: &str) -> Option<String> {
        check_path(&LitStr::new(path, Span::call_site()))
            .err()
            .map(|e| e.to_string())
    }

    #[test]
    fn accepts_fixed_paths() {
        for path in ["/", "/chat", "/v1/chat", "/a-b_c.d"] {
            assert_eq!(path_error(path), None, "{path}");
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
            (
                "/rooms/{id}",
                "a gateway path is fixed: route parameters and wildcards are not supported",
            ),
            (
                "/rooms/:id",
                "a gateway path is fixed: route parameters and wildcards are not supported",
            ),
            ("/chat/", "remove the trailing `/`: write \"/chat\""),
            ("/a//b", "a gateway path has no empty segment (`//`)"),
        ] {
            assert_eq!(path_error(path).as_deref(), Some(message), "{path}");
        }
    }
}
