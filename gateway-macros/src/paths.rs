//! Every absolute path the expansion names, in one table (Rocket's `exports.rs`), and the
//! root they hang from.
//!
//! The generated code reaches the framework only through `<root>::__private` and std only
//! through `::core` and `::std`, so that a user's own `Result`, `Option` or `Arc` in scope
//! cannot change what it means. The root is the `crate = ".."` the user wrote, or else the
//! framework crate their `Cargo.toml` depends on (`::ws_gateway`, or `::ws_gateway_core`
//! for crates below the facade), found by `proc-macro-crate`. Interpolate a path as `#ARC`
//! inside [`with_root`]; where an error about what it names should land on the user's
//! tokens, respan it first: `let arg = ARG.at(ty.span());`, then `#arg!(..)`.

use std::cell::RefCell;

use proc_macro_crate::{FoundCrate, crate_name};
use proc_macro2::{Ident, Punct, Spacing, Span, TokenStream, TokenTree};
use quote::{ToTokens, TokenStreamExt, quote};

use crate::attr::LayerKind;

thread_local! {
    /// The root of the expansion under way: set by [`with_root`] for its duration.
    static ROOT: RefCell<Option<TokenStream>> = const { RefCell::new(None) };
}

/// Runs `expand` with the framework's paths rooted at `krate`, or at the framework crate
/// the calling crate depends on when `krate` is `None`.
pub(crate) fn with_root<R>(krate: Option<&syn::Path>, expand: impl FnOnce() -> R) -> R {
    let root = match krate {
        Some(path) => path.to_token_stream(),
        None => dependency_root(),
    };
    let outer = ROOT.with(|cell| cell.replace(Some(root)));
    let result = expand();
    ROOT.with(|cell| *cell.borrow_mut() = outer);
    result
}

/// `::ws_gateway` if the calling crate depends on the facade (or is it), else
/// `::ws_gateway_core` if it depends on the runtime (or is it), else `::ws_gateway`, so
/// that the compiler's error names the crate to add. A renamed dependency is followed.
fn dependency_root() -> TokenStream {
    for (package, lib) in [
        ("ws-gateway", "ws_gateway"),
        ("ws-gateway-core", "ws_gateway_core"),
    ] {
        match crate_name(package) {
            // Both crates declare `extern crate self as <lib>`, so that their own doc
            // tests and unit tests reach themselves by name.
            Ok(FoundCrate::Itself) => return absolute(lib),
            Ok(FoundCrate::Name(name)) => return absolute(&name),
            Err(_) => {}
        }
    }
    absolute("ws_gateway")
}

fn absolute(name: &str) -> TokenStream {
    let ident = Ident::new(name, Span::call_site());
    quote!(::#ident)
}

/// Where a path starts: at the framework's root, or at the crate root (`::core`, `::std`).
#[derive(Clone, Copy)]
enum Base {
    Root,
    Absolute,
}

/// An absolute path, `<root>::segment::segment` or `::segment::segment`, written at one
/// span.
#[derive(Clone, Copy)]
pub(crate) struct Path {
    base: Base,
    segments: &'static [&'static str],
    span: Option<Span>,
}

impl Path {
    const fn new(base: Base, segments: &'static [&'static str]) -> Self {
        Self {
            base,
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
        if let Base::Root = self.base {
            let root = ROOT
                .with(|cell| cell.borrow().clone())
                .unwrap_or_else(dependency_root);
            tokens.extend(root.into_iter().map(|mut tree: TokenTree| {
                tree.set_span(span);
                tree
            }));
        }
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
    ($($(#[doc = $doc:literal])* $name:ident = $base:ident [$($segment:literal),+];)*) => {
        $(
            $(#[doc = $doc])*
            pub(crate) const $name: Path = Path::new(Base::$base, &[$($segment),+]);
        )*
    };
}

paths! {
    // The framework, all through `__private`.

    /// The trait `#[websocket_gateway(path = "..")]` implements on the struct.
    GATEWAY = Root ["__private", "Gateway"];
    /// The trait `#[websocket_gateway]` implements from the `impl` block.
    GATEWAY_HANDLERS = Root ["__private", "GatewayHandlers"];
    /// What `Gateway::build` reads the providers from.
    BUILD_CONTEXT = Root ["__private", "BuildContext"];
    /// The error of `Gateway::build`.
    BUILD_ERROR = Root ["__private", "BuildError"];
    /// Resolves one field of the struct from the providers.
    RESOLVE = Root ["__private", "resolve"];
    /// What `Gateway::needs` declares the fields' dependencies into.
    NEEDS = Root ["__private", "Needs"];
    /// Declares the dependencies of the fields' types (a macro).
    DECLARE_NEEDS = Root ["__private", "needs"];
    /// Submits the gateway's descriptor to the registry (a macro).
    REGISTER_GATEWAY = Root ["__private", "register_gateway"];
    /// One entry of `HANDLERS`.
    HANDLER = Root ["__private", "Handler"];
    /// The table of lifecycle hooks.
    HOOKS = Root ["__private", "Hooks"];
    /// One lifecycle hook.
    HOOK = Root ["__private", "Hook"];
    /// What a shim reads the request from.
    CONTEXT = Root ["__private", "Context"];
    /// What a shim returns.
    DISPATCH = Root ["__private", "Dispatch"];
    /// One handler argument, extracted and piped (a macro).
    ARG = Root ["__private", "arg"];
    /// A handler's return value as its reply (a macro).
    REPLY = Root ["__private", "reply"];
    /// A hook's return value as its outcome.
    HOOK_OUTCOME = Root ["__private", "hook_outcome"];
    /// The build-time check of a method's extractors (a macro).
    VERIFY = Root ["__private", "verify"];
    /// The AsyncAPI description of a handler (a macro).
    DESCRIBE = Root ["__private", "describe"];
    /// Names a handler's reply type for `describe!`.
    TAG = Root ["__private", "Tag"];
    /// The guards, interceptors and filters of a scope.
    LAYERS = Root ["__private", "Layers"];
    /// A guard, type-erased.
    GUARD_REF = Root ["__private", "GuardRef"];
    /// An interceptor, type-erased.
    INTERCEPTOR_REF = Root ["__private", "InterceptorRef"];
    /// An exception filter, type-erased.
    FILTER_REF = Root ["__private", "FilterRef"];
    /// `#[use_pipes]`, when it moves below `#[websocket_gateway]`.
    USE_PIPES = Root ["use_pipes"];
    /// `#[use_guards]`, when it moves below `#[websocket_gateway]`.
    USE_GUARDS = Root ["use_guards"];
    /// `#[use_interceptors]`, when it moves below `#[websocket_gateway]`.
    USE_INTERCEPTORS = Root ["use_interceptors"];
    /// `#[use_filters]`, when it moves below `#[websocket_gateway]`.
    USE_FILTERS = Root ["use_filters"];

    // std.

    /// The gateway as the runtime shares it between connections.
    ARC = Absolute ["std", "sync", "Arc"];
    /// The lists of `Layers` (a macro).
    VEC = Absolute ["std", "vec"];
    /// `Ok`, of `Gateway::build`.
    OK = Absolute ["core", "result", "Result", "Ok"];
    /// The return type of `Gateway::build`.
    RESULT = Absolute ["core", "result", "Result"];
    /// A hook that is there.
    SOME = Absolute ["core", "option", "Option", "Some"];
    /// A handler's source file, for registry errors (a macro).
    FILE = Absolute ["core", "file"];
    /// A handler's source line, for registry errors (a macro).
    LINE = Absolute ["core", "line"];
    /// The arguments of a method call that is named, never made (a macro).
    UNREACHABLE = Absolute ["core", "unreachable"];
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
        // This crate's dev-dependency is the runtime, so that is the root it finds.
        let arg = with_root(None, || quote!(#ARG!(cx, T)).to_string());
        assert_eq!(
            arg,
            quote!(::ws_gateway_core::__private::arg!(cx, T)).to_string()
        );
    }

    #[test]
    fn crate_overrides_the_root() {
        let krate: syn::Path = syn::parse_quote!(my_app::gateway);
        let arg = with_root(Some(&krate), || quote!(#ARG!(cx, T)).to_string());
        assert_eq!(
            arg,
            quote!(my_app::gateway::__private::arg!(cx, T)).to_string()
        );
    }
}
