//! The expansion. Each entry point runs the stages in order, as serde's
//! `expand_derive_serialize` does: the model ([`crate::ast`]), the rules ([`crate::check`]),
//! then the tokens below, which decide nothing: every question about the input was
//! answered before. Every path they name is in [`crate::paths`].
//!
//! What is generated sits in one `const _: () = { .. };` beside the user's item, so that it
//! adds no name the user could see or collide with: the trait impls and the free shim
//! functions they point to.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Expr, Fields, Ident, Item, ItemImpl, ItemStruct, LitStr, Type};

use crate::ast::{GatewayImpl, GatewayStruct, Handler, Hook, Layers, Method};
use crate::attr::{self, Helper, HookKind, LayerKind};
use crate::check::{self, Ctxt};
use crate::paths::{
    self, ARC, ARG, BUILD_CONTEXT, BUILD_ERROR, CONTEXT, DECLARE_NEEDS, DESCRIBE, DISPATCH, FILE,
    FILTER_REF, GATEWAY, GATEWAY_HANDLERS, GUARD_REF, HANDLER, HOOK, HOOK_OUTCOME, HOOKS,
    INTERCEPTOR_REF, LAYERS, LINE, NEEDS, OK, REGISTER_GATEWAY, REPLY, RESOLVE, RESULT, SOME, TAG,
    UNREACHABLE, VEC, VERIFY,
};

/// A macro input with mistakes: the user's item to emit anyway (our helper attributes
/// removed, with the generated code a correct item would need to keep the rest of the
/// crate compiling) and the errors, all of them.
pub(crate) struct Rejected {
    item: TokenStream,
    errors: syn::Error,
}

impl Rejected {
    /// The item followed by one `compile_error!` per mistake (tokio's
    /// `token_stream_with_error`): the IDE keeps seeing the item, and a mistake in the
    /// attribute does not also read as ten unresolved names.
    pub(crate) fn into_tokens(self) -> TokenStream {
        let Self { item, errors } = self;
        let errors = errors.to_compile_error();
        quote!(#item #errors)
    }
}

/// `#[websocket_gateway]`, on a struct or on its `impl` block.
pub(crate) fn websocket_gateway(
    args: TokenStream,
    item: TokenStream,
) -> Result<TokenStream, Rejected> {
    let krate = attr::crate_in(&args);
    paths::with_root(krate.as_ref(), || match syn::parse2::<Item>(item.clone()) {
        Ok(Item::Struct(item)) => gateway_struct(args, item),
        Ok(Item::Impl(item)) => gateway_impl(args, item),
        Ok(_) => Err(Rejected {
            item,
            errors: syn::Error::new(
                Span::call_site(),
                "`#[websocket_gateway]` goes on a struct (with `path = \"/...\"`) and on its `impl` block",
            ),
        }),
        Err(errors) => Err(Rejected { item, errors }),
    })
}

/// A helper attribute that no `#[websocket_gateway]` consumed: above the gateway's
/// `#[websocket_gateway]`, it moves below it (where the gateway reads it); anywhere else it
/// is a mistake.
pub(crate) fn helper_outside_gateway(
    helper: Helper,
    args: TokenStream,
    item: TokenStream,
) -> Result<TokenStream, Rejected> {
    let parsed = match helper {
        Helper::Layer(_) => syn::parse2::<Item>(item.clone()).ok(),
        Helper::Subscribe | Helper::Hook(_) => None,
    };
    if let (Helper::Layer(kind), Some(Item::Impl(block))) = (helper, &parsed)
        && block.attrs.iter().any(attr::is_gateway_attr)
    {
        return Ok(move_below_gateway(kind, args, block.clone()));
    }
    let cx = Ctxt::new();
    check::helper_outside_gateway(&cx, helper, !args.is_empty(), parsed.as_ref());
    match cx.check() {
        Ok(()) => Ok(item),
        Err(errors) => Err(Rejected { item, errors }),
    }
}

/// `#[use_guards(A)] #[websocket_gateway] impl ..` as `#[websocket_gateway] #[use_guards(A)]
/// impl ..`: appended, so that several of them above keep their order.
fn move_below_gateway(kind: LayerKind, args: TokenStream, mut block: ItemImpl) -> TokenStream {
    let attrs = std::mem::take(&mut block.attrs);
    let krate = attrs
        .iter()
        .find(|attr| attr::is_gateway_attr(attr))
        .and_then(attr::crate_of);
    let path = paths::layer_attribute(kind);
    paths::with_root(krate.as_ref(), || {
        quote! {
            #(#attrs)*
            #[#path(#args)]
            #block
        }
    })
}

// The struct.

fn gateway_struct(args: TokenStream, mut item: ItemStruct) -> Result<TokenStream, Rejected> {
    let cx = Ctxt::new();
    let stripped = GatewayStruct::strip(&mut item);
    let gateway = GatewayStruct::from_ast(&cx, &item, args, stripped);
    check::gateway_struct(&cx, &gateway);
    match cx.check() {
        Ok(()) => {
            let generated = struct_impls(&gateway, gateway.args.path());
            Ok(quote!(#item #generated))
        }
        Err(errors) => {
            // The impls with the path `/`, so that the `impl` block and the app builder
            // still find a gateway (and report their own mistakes, not this one again).
            let generated = struct_impls(&gateway, None);
            Err(Rejected {
                item: quote!(#item #generated),
                errors,
            })
        }
    }
}

/// The `Gateway` impl and the registration. None for a generic struct (a mistake already
/// reported): there is no one type to implement it for.
fn struct_impls(gateway: &GatewayStruct<'_>, path: Option<&LitStr>) -> TokenStream {
    if !gateway.node.generics.params.is_empty() {
        return TokenStream::new();
    }
    let ident = gateway.ident();
    let name = ident.to_string();
    let path = path
        .cloned()
        .unwrap_or_else(|| LitStr::new("/", Span::call_site()));
    let fields = &gateway.node.fields;
    // A unit gateway reads nothing from the context.
    let cx = if fields.is_empty() {
        quote!(_)
    } else {
        quote!(cx)
    };
    let build = build_body(fields);
    let needs = needs_fn(fields);
    let cfg = &gateway.cfg;
    quote! {
        #(#cfg)*
        const _: () = {
            #[automatically_derived]
            impl #GATEWAY for #ident {
                const PATH: &'static str = #path;
                const NAME: &'static str = #name;

                fn build(#cx: &#BUILD_CONTEXT<'_>) -> #RESULT<Self, #BUILD_ERROR> {
                    #OK(#build)
                }

                #needs
            }

            #REGISTER_GATEWAY!(#ident);
        };
    }
}

/// `Self { field: resolve(cx, "field")?, .. }`, each `resolve` spanned at the field's type
/// so that "cannot be injected" lands there.
fn build_body(fields: &Fields) -> TokenStream {
    let cx = quote!(cx);
    let resolve = |ty: &Type, name: String| {
        let resolve = RESOLVE.at(ty.span());
        quote_spanned!(ty.span()=> #resolve::<#ty>(#cx, #name)?)
    };
    match fields {
        Fields::Named(named) => {
            let fields = named.named.iter().map(|field| {
                let ident = &field.ident;
                let name = ident.as_ref().map(ToString::to_string).unwrap_or_default();
                let value = resolve(&field.ty, name);
                quote!(#ident: #value)
            });
            quote!(Self { #(#fields,)* })
        }
        Fields::Unnamed(unnamed) => {
            let fields = unnamed
                .unnamed
                .iter()
                .enumerate()
                .map(|(i, field)| resolve(&field.ty, i.to_string()));
            quote!(Self(#(#fields,)*))
        }
        Fields::Unit => quote!(Self),
    }
}

/// `fn needs(needs) { needs!(needs; FieldType, ..) }`: the fields' dependencies, for the
/// build order. None for a unit gateway, which needs nothing (the trait's default). A type
/// that cannot be injected declares nothing here: `resolve` reports it, once.
fn needs_fn(fields: &Fields) -> TokenStream {
    if fields.is_empty() {
        return TokenStream::new();
    }
    let types = fields.iter().map(|field| &field.ty);
    quote! {
        fn needs(needs: &mut #NEEDS) {
            #DECLARE_NEEDS!(needs; #(#types),*);
        }
    }
}

// The impl block.

fn gateway_impl(args: TokenStream, mut item: ItemImpl) -> Result<TokenStream, Rejected> {
    let cx = Ctxt::new();
    let stripped = GatewayImpl::strip(&mut item);
    let gateway = GatewayImpl::from_ast(&cx, &item, args, stripped);
    check::gateway_impl(&cx, &gateway);
    match cx.check() {
        Ok(()) => {
            let generated = impl_tables(&gateway);
            Ok(quote!(#item #generated))
        }
        Err(errors) => {
            let generated = empty_tables(&gateway);
            Err(Rejected {
                item: quote!(#item #generated),
                errors,
            })
        }
    }
}

/// An empty handler table, so that one mistake in the block does not also read "no
/// `#[websocket_gateway]` impl block" on the struct. Nothing for a trait impl or a generic
/// block (mistakes already reported), which have no one gateway type to implement it for.
fn empty_tables(gateway: &GatewayImpl<'_>) -> TokenStream {
    let node = gateway.node;
    if node.trait_.is_some() || !node.generics.params.is_empty() {
        return TokenStream::new();
    }
    let self_ty = gateway.self_ty();
    let cfg = &gateway.cfg;
    quote! {
        #(#cfg)*
        const _: () = {
            #[automatically_derived]
            impl #GATEWAY_HANDLERS for #self_ty {
                const HANDLERS: &'static [#HANDLER<Self>] = &[];
            }
        };
    }
}

/// The shims, and the `GatewayHandlers` impl whose tables point at them.
fn impl_tables(gateway: &GatewayImpl<'_>) -> TokenStream {
    let self_ty = gateway.self_ty();
    let shims = gateway
        .handlers
        .iter()
        .map(|handler| {
            let pipes: Vec<&Expr> = gateway
                .layers
                .of(LayerKind::Pipes)
                .chain(handler.method.layers.of(LayerKind::Pipes))
                .collect();
            shim(self_ty, &handler.method, &pipes, Call::Reply)
        })
        .chain(
            gateway
                .hooks
                .iter()
                .map(|hook| shim(self_ty, &hook.method, &[], Call::Hook)),
        );
    let handlers = gateway.handlers.iter().map(handler_entry);
    let hooks = (!gateway.hooks.is_empty()).then(|| hooks_table(&gateway.hooks));
    let layers = gateway.layers.has_runtime_layers().then(|| {
        let value = layers_value(&gateway.layers);
        quote! {
            fn layers() -> #LAYERS {
                #value
            }
        }
    });
    let cfg = &gateway.cfg;
    quote! {
        #(#cfg)*
        const _: () = {
            #(#shims)*

            #[automatically_derived]
            impl #GATEWAY_HANDLERS for #self_ty {
                const HANDLERS: &'static [#HANDLER<Self>] = &[#(#handlers),*];
                #hooks
                #layers
            }
        };
    }
}

fn shim_ident(method: &Method<'_>) -> Ident {
    format_ident!("__gateway_{}", method.name(), span = method.ident().span())
}

#[derive(Clone, Copy)]
enum Call {
    /// A handler: its value becomes the reply.
    Reply,
    /// A hook: `()` or `Result<(), E>`.
    Hook,
}

/// `fn __gateway_<method>(this, cx) -> Dispatch`: one `arg!` per argument (extracted, and
/// piped if it is the body), the call, and what it returns turned into an outcome.
fn shim(self_ty: &Type, method: &Method<'_>, pipes: &[&Expr], call: Call) -> TokenStream {
    let this = Ident::new("this", Span::mixed_site());
    let cx = Ident::new("cx", Span::mixed_site());
    let to = Ident::new("to", Span::mixed_site());
    let name = shim_ident(method);
    let ident = method.ident();
    let args = method.args.iter().map(|arg| {
        let binding = &arg.binding;
        let ty = arg.ty();
        // At the argument's type, so that "neither a body nor an extractor" lands there.
        let arg = ARG.at(ty.span());
        if pipes.is_empty() {
            quote_spanned!(ty.span()=> let #binding = #arg!(#cx, #ty);)
        } else {
            quote_spanned!(ty.span()=> let #binding = #arg!(#cx, #ty; #(#pipes),*);)
        }
    });
    let bindings = method.args.iter().map(|arg| &arg.binding);
    let await_ = method.is_async().then(|| quote!(.await));
    let value = quote!(#this.#ident(#(#bindings),*)#await_);
    let span = method.output_span();
    let outcome = |to: TokenStream| match call {
        Call::Reply => {
            let reply = REPLY.at(span);
            quote_spanned!(span=> #reply!(#to, #value))
        }
        Call::Hook => {
            let hook_outcome = HOOK_OUTCOME.at(span);
            quote_spanned!(span=> #hook_outcome(#value))
        }
    };
    let body = if method.is_async() {
        let outcome = outcome(quote!(#to));
        let reply_to = matches!(call, Call::Reply).then(|| quote!(let #to = #cx.reply_to();));
        quote! {
            let #this = #ARC::clone(#this);
            #reply_to
            #DISPATCH::pending(async move { #outcome })
        }
    } else {
        let outcome = outcome(quote!(#cx.reply_to()));
        quote!(#DISPATCH::ready(#outcome))
    };
    // `cx` goes unused in a shim without arguments whose outcome needs no context.
    let cx_param = if method.args.is_empty() && matches!(call, Call::Hook) {
        Ident::new("_cx", Span::mixed_site())
    } else {
        cx.clone()
    };
    let cfg = &method.cfg;
    quote! {
        #(#cfg)*
        fn #name(#this: &#ARC<#self_ty>, #cx_param: &#CONTEXT<'_>) -> #DISPATCH {
            #(#args)*
            #body
        }
    }
}

/// `|cx| verify!(cx, "method"; "arg": Type, ..)`: the build-time check of the extractors.
fn verify(method: &Method<'_>) -> TokenStream {
    let name = method.name();
    let args = method.args.iter().map(|arg| {
        let name = &arg.name;
        let ty = arg.ty();
        quote_spanned!(ty.span()=> #name: #ty)
    });
    quote!(|cx| #VERIFY!(cx, #name; #(#args),*))
}

/// `|generator| describe!(generator, tag; Type, ..)`: the JSON Schemas of the body and the
/// reply, for AsyncAPI. The reply's type is named by a closure that calls the method and is
/// never run (which also names `impl Stream` types).
fn describe(method: &Method<'_>) -> TokenStream {
    let ident = method.ident();
    let this = Ident::new("this", Span::mixed_site());
    let generator = Ident::new("generator", Span::mixed_site());
    let tys = method.args.iter().map(|arg| arg.ty());
    let never = method.args.iter().map(|_| quote!(#UNREACHABLE!()));
    let tag = if method.is_async() {
        quote!(awaited_by)
    } else {
        quote!(returned_by)
    };
    quote! {
        |#generator| {
            #[allow(unreachable_code, clippy::diverging_sub_expression)]
            let reply = #TAG::#tag(|#this: &'static Self| #this.#ident(#(#never),*));
            #DESCRIBE!(#generator, reply; #(#tys),*)
        }
    }
}

/// One `Handler { .. }` of `HANDLERS`, under the method's `#[cfg]`s.
fn handler_entry(handler: &Handler<'_>) -> TokenStream {
    let method = &handler.method;
    let event = handler.event();
    let name = method.name();
    let call = shim_ident(method);
    let verify = verify(method);
    let describe = describe(method);
    let layers = if method.layers.has_runtime_layers() {
        let value = layers_value(&method.layers);
        quote!(|| #value)
    } else {
        quote!(#LAYERS::default)
    };
    // At the event, so that `line!()` is the line of `#[subscribe(..)]`.
    let file = FILE.at(event.span());
    let line = LINE.at(event.span());
    let cfg = &method.cfg;
    quote! {
        #(#cfg)*
        #HANDLER {
            event: #event,
            method: #name,
            call: #call,
            verify: #verify,
            layers: #layers,
            describe: #describe,
            file: #file!(),
            line: #line!(),
        }
    }
}

/// `const HOOKS`: the hooks the block marks, each under its method's `#[cfg]`s, the
/// others `None`.
fn hooks_table(hooks: &[Hook<'_>]) -> TokenStream {
    let entries = hooks.iter().map(|hook| {
        let method = &hook.method;
        let field = hook_field(hook.kind);
        let name = method.name();
        let call = shim_ident(method);
        let verify = verify(method);
        let cfg = &method.cfg;
        quote! {
            #(#cfg)*
            #field: #SOME(#HOOK {
                method: #name,
                call: #call,
                verify: #verify,
            }),
        }
    });
    // `..NONE` fills the kinds not given. With all three given it is needless (clippy
    // says so), unless a `#[cfg]` may take one away: then it stays, the lint allowed.
    let complete = [
        HookKind::AfterInit,
        HookKind::HandleConnection,
        HookKind::HandleDisconnect,
    ]
    .iter()
    .all(|kind| hooks.iter().any(|hook| hook.kind == *kind));
    let unconditional = hooks.iter().all(|hook| hook.method.cfg.is_empty());
    let rest = (!(complete && unconditional)).then(|| quote!(..#HOOKS::NONE));
    let allow = (complete && !unconditional).then(|| quote!(#[allow(clippy::needless_update)]));
    quote! {
        #allow
        const HOOKS: #HOOKS<Self> = #HOOKS {
            #(#entries)*
            #rest
        };
    }
}

/// The field of `ws_gateway_core::Hooks` a hook fills.
fn hook_field(kind: HookKind) -> Ident {
    let field = match kind {
        HookKind::AfterInit => "after_init",
        HookKind::HandleConnection => "handle_connection",
        HookKind::HandleDisconnect => "handle_disconnect",
    };
    Ident::new(field, Span::call_site())
}

/// A `Layers { .. }` value: the guards, interceptors and filters of one scope, each made
/// at the user's expression so that "not a guard" lands on the guard. (Pipes are not
/// there: they run in the shim, on the body.)
fn layers_value(layers: &Layers) -> TokenStream {
    let wrap = |kind: LayerKind, wrapper: paths::Path| -> Vec<TokenStream> {
        layers
            .of(kind)
            .map(|expr| {
                let wrapper = wrapper.at(expr.span());
                quote_spanned!(expr.span()=> #wrapper::new(#expr))
            })
            .collect()
    };
    let guards = wrap(LayerKind::Guards, GUARD_REF);
    let interceptors = wrap(LayerKind::Interceptors, INTERCEPTOR_REF);
    let filters = wrap(LayerKind::Filters, FILTER_REF);
    quote! {
        #LAYERS {
            guards: #VEC![#(#guards),*],
            interceptors: #VEC![#(#interceptors),*],
            filters: #VEC![#(#filters),*],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(args: &str, item: &str) -> Result<String, String> {
        let args: TokenStream = args.parse().unwrap();
        let item: TokenStream = item.parse().unwrap();
        match websocket_gateway(args, item) {
            Ok(tokens) => Ok(tokens.to_string()),
            Err(rejected) => Err(rejected.into_tokens().to_string()),
        }
    }

    #[test]
    fn a_broken_impl_keeps_its_item_without_our_attributes() {
        let out = expand(
            "",
            r#"impl G {
                #[subscribe("")]
                #[use_guards(Allow)]
                fn a(&self) -> u32 { 1 }
                #[doc = "kept"]
                fn plain(&self) {}
            }"#,
        )
        .unwrap_err();
        assert!(out.contains("fn a (& self) -> u32 { 1 }"), "{out}");
        assert!(out.contains("# [doc = \"kept\"] fn plain"), "{out}");
        assert!(
            !out.contains("subscribe") && !out.contains("use_guards"),
            "{out}"
        );
        // The table the struct's registration needs, empty.
        assert!(
            out.contains("const HANDLERS : & 'static [:: ws_gateway_core :: __private :: Handler < Self >] = & [] ;"),
            "{out}"
        );
        assert_eq!(out.matches("compile_error").count(), 1, "{out}");
    }

    #[test]
    fn a_broken_struct_keeps_its_item_and_its_impl() {
        let out = expand("path = \"chat\"", "#[use_guards(A)] pub struct G;").unwrap_err();
        assert!(out.starts_with("pub struct G ;"), "{out}");
        assert!(
            out.contains("const PATH : & 'static str = \"/\" ;"),
            "{out}"
        );
        assert_eq!(out.matches("compile_error").count(), 2, "{out}");
    }

    #[test]
    fn generated_code_sits_in_one_anonymous_const() {
        let out = expand(
            "",
            r#"impl G {
                #[subscribe("a")]
                fn a(&self) {}
            }"#,
        )
        .unwrap();
        assert_eq!(out.matches("const _ : () =").count(), 1, "{out}");
        assert!(!out.contains("impl G { fn __gateway"), "{out}");
    }

    #[test]
    fn a_layer_above_the_gateway_moves_below_it() {
        let out = helper_outside_gateway(
            Helper::Layer(LayerKind::Guards),
            "A".parse().unwrap(),
            "#[websocket_gateway] #[use_pipes(P)] impl G {}"
                .parse()
                .unwrap(),
        );
        let Ok(out) = out else {
            panic!("moved, not rejected");
        };
        assert_eq!(
            out.to_string(),
            "# [websocket_gateway] # [use_pipes (P)] # [:: ws_gateway_core :: use_guards (A)] impl G { }"
        );
    }
}
