//! Every absolute path the expansion names, in one table (Rocket's `exports.rs`).
//!
//! The generated code reaches gateway-core only through `::gateway_core::__private` and std
//! only through `::core` and `::std`, so that a user's own `Result`, `Option` or `Arc` in
//! scope cannot change what it means. Interpolate a path as `#ARC`; where an error about
//! what it names should land on the user's tokens, respan it first:
//! `let arg = ARG.at(ty.span());`, then `#arg!(..)`.

use proc_macro2::{Ident, Punct, Spacing, Span, TokenStream};
use quote::{ToTokens, TokenStreamExt};

use crate::attr::LayerKind;

/// An absolute path, `::segment::segment`, written at one span.
#[derive(Clone, Copy)]
pub(crate) struct Path {
    segments: &'static [&'static str],
    span: Option<Span>,
}

impl Path {
    const fn new(segments: &'static [&'static str]) -> Self {
        Self {
            segments,
            span: None,
        }
    }

    /// The same path written at `span`, so that an error about the item it names (an
    /// unmet bound of `arg!`, say) is reported there.
    pub(crate) fn at(self, span: Span) -> Self {
        Self {
            span: Some(span),
            ..self
        }
    }
}

impl ToTokens for Path {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        let span = self.span.unwrap_or_else(Span::call_site);
        for segment in self.segments {
            let mut colon = Punct::new(':', Spacing::Joint);
            colon.set_span(span);
            tokens.append(colon);
            let mut colon = Punct::new(':', Spacing::Alone);
            colon.set_span(span);
            tokens.append(colon);
            tokens.append(Ident::new(segment, span));
        }
    }
}

macro_rules! paths {
    ($($(#[doc = $doc:literal])* $name:ident = [$($segment:literal),+];)*) => {
        $(
            $(#[doc = $doc])*
            pub(crate) const $name: Path = Path::new(&[$($segment),+]);
        )*
    };
}

paths! {
    // gateway-core, all through `__private`.

    /// The trait `#[websocket_gateway(path = "..")]` implements on the struct.
    GATEWAY = ["gateway_core", "__private", "Gateway"];
    /// The trait `#[websocket_gateway]` implements from the `impl` block.
    GATEWAY_HANDLERS = ["gateway_core", "__private", "GatewayHandlers"];
    /// What `Gateway::build` reads the providers from.
    BUILD_CONTEXT = ["gateway_core", "__private", "BuildContext"];
    /// The error of `Gateway::build`.
    BUILD_ERROR = ["gateway_core", "__private", "BuildError"];
    /// Resolves one field of the struct from the providers.
    RESOLVE = ["gateway_core", "__private", "resolve"];
    /// Submits the gateway's descriptor to the registry (a macro).
    REGISTER_GATEWAY = ["gateway_core", "__private", "register_gateway"];
    /// One entry of `HANDLERS`.
    HANDLER = ["gateway_core", "__private", "Handler"];
    /// The table of lifecycle hooks.
    HOOKS = ["gateway_core", "__private", "Hooks"];
    /// One lifecycle hook.
    HOOK = ["gateway_core", "__private", "Hook"];
    /// What a shim reads the request from.
    CONTEXT = ["gateway_core", "__private", "Context"];
    /// What a shim returns.
    DISPATCH = ["gateway_core", "__private", "Dispatch"];
    /// One handler argument, extracted and piped (a macro).
    ARG = ["gateway_core", "__private", "arg"];
    /// A handler's return value as its reply (a macro).
    REPLY = ["gateway_core", "__private", "reply"];
    /// A hook's return value as its outcome.
    HOOK_OUTCOME = ["gateway_core", "__private", "hook_outcome"];
    /// The build-time check of a method's extractors (a macro).
    VERIFY = ["gateway_core", "__private", "verify"];
    /// The AsyncAPI description of a handler (a macro).
    DESCRIBE = ["gateway_core", "__private", "describe"];
    /// Names a handler's reply type for `describe!`.
    TAG = ["gateway_core", "__private", "Tag"];
    /// The guards, interceptors and filters of a scope.
    LAYERS = ["gateway_core", "__private", "Layers"];
    /// A guard, type-erased.
    GUARD_REF = ["gateway_core", "__private", "GuardRef"];
    /// An interceptor, type-erased.
    INTERCEPTOR_REF = ["gateway_core", "__private", "InterceptorRef"];
    /// An exception filter, type-erased.
    FILTER_REF = ["gateway_core", "__private", "FilterRef"];
    /// `#[use_pipes]`, when it moves below `#[websocket_gateway]`.
    USE_PIPES = ["gateway_core", "use_pipes"];
    /// `#[use_guards]`, when it moves below `#[websocket_gateway]`.
    USE_GUARDS = ["gateway_core", "use_guards"];
    /// `#[use_interceptors]`, when it moves below `#[websocket_gateway]`.
    USE_INTERCEPTORS = ["gateway_core", "use_interceptors"];
    /// `#[use_filters]`, when it moves below `#[websocket_gateway]`.
    USE_FILTERS = ["gateway_core", "use_filters"];

    // std.

    /// The gateway as the runtime shares it between connections.
    ARC = ["std", "sync", "Arc"];
    /// The lists of `Layers` (a macro).
    VEC = ["std", "vec"];
    /// `Ok`, of `Gateway::build`.
    OK = ["core", "result", "Result", "Ok"];
    /// The return type of `Gateway::build`.
    RESULT = ["core", "result", "Result"];
    /// A hook that is there.
    SOME = ["core", "option", "Option", "Some"];
    /// A handler's source file, for registry errors (a macro).
    FILE = ["core", "file"];
    /// A handler's source line, for registry errors (a macro).
    LINE = ["core", "line"];
    /// The arguments of a method call that is named, never made (a macro).
    UNREACHABLE = ["core", "unreachable"];
}

/// The path of a `use_*` attribute.
pub(crate) fn layer_attribute(kind: LayerKind) -> Path {
    match kind {
        LayerKind::Pipes => USE_PIPES,
        LayerKind::Guards => USE_GUARDS,
        LayerKind::Interceptors => USE_INTERCEPTORS,
        LayerKind::Filters => USE_FILTERS,
    }
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;

    #[test]
    fn a_path_is_absolute() {
        assert_eq!(
            quote!(#ARC::clone).to_string(),
            quote!(::std::sync::Arc::clone).to_string()
        );
        assert_eq!(
            quote!(#ARG!(cx, T)).to_string(),
            quote!(::gateway_core::__private::arg!(cx, T)).to_string()
        );
    }
}
