//! `#[websocket_gateway]` on an `impl` block: reads its `#[subscribe]` handlers, lifecycle
//! hooks and `use_*` layers, then writes one small shim per method and the static tables
//! the runtime dispatches from. Every check runs before anything is generated, and every
//! mistake is reported in the same compile, on the user's tokens.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{
    Attribute, Expr, FnArg, Ident, ImplItem, ImplItemFn, ItemImpl, LitStr, Pat, ReturnType, Type,
};

use crate::attr::{self, Helper, HookKind, LayerKind};

/// Expands the impl form. On any error the impl is kept (helper attributes removed) with an
/// empty handler table, so that one mistake gives one error.
pub(crate) fn expand(args: TokenStream, mut item: ItemImpl) -> TokenStream {
    let mut errors = Errors::default();
    // A misplaced path is reported, and the block is still read and generated: the
    // mistake is in the attribute, not in the handlers.
    if !args.is_empty() {
        errors.push_benign(syn::Error::new_spanned(
            &args,
            "the path goes on the struct: `#[websocket_gateway(path = \"/...\")] struct ...`; \
             the `impl` block takes `#[websocket_gateway]` alone",
        ));
    }
    let model = Model::read(&mut item, &mut errors);
    let self_ty = &item.self_ty;
    let generated = if item.trait_.is_some() {
        // The gateway's inherent impl block (if any) implements the tables: nothing here.
        TokenStream::new()
    } else if errors.is_fatal() {
        // An empty table, so that one mistake does not also read "no impl block".
        quote! {
            #[automatically_derived]
            impl ::gateway_core::__private::GatewayHandlers for #self_ty {
                const HANDLERS: &'static [::gateway_core::__private::Handler<Self>] = &[];
            }
        }
    } else {
        model.expand(self_ty)
    };
    let errors = errors.into_compile_errors();
    quote! {
        #item
        #generated
        #errors
    }
}

/// Errors gathered over the whole impl block, reported together.
#[derive(Default)]
struct Errors {
    all: Option<syn::Error>,
    /// Whether an error makes the handler table wrong (all but a misplaced path).
    fatal: bool,
}

impl Errors {
    fn push(&mut self, err: syn::Error) {
        self.fatal = true;
        self.push_benign(err);
    }

    fn push_benign(&mut self, err: syn::Error) {
        match &mut self.all {
            Some(all) => all.combine(err),
            None => self.all = Some(err),
        }
    }

    fn is_fatal(&self) -> bool {
        self.fatal
    }

    fn into_compile_errors(self) -> TokenStream {
        self.all.map(|e| e.to_compile_error()).unwrap_or_default()
    }
}

/// Pipes, guards, interceptors and filters of one scope, as the user wrote them.
#[derive(Default)]
struct Layers {
    pipes: Vec<Expr>,
    guards: Vec<Expr>,
    interceptors: Vec<Expr>,
    filters: Vec<Expr>,
}

impl Layers {
    fn add(&mut self, kind: LayerKind, exprs: Vec<Expr>) {
        let list = match kind {
            LayerKind::Pipes => &mut self.pipes,
            LayerKind::Guards => &mut self.guards,
            LayerKind::Interceptors => &mut self.interceptors,
            LayerKind::Filters => &mut self.filters,
        };
        list.extend(exprs);
    }

    /// Whether the runtime's `Layers` of this scope is empty (pipes live in the shim).
    fn is_empty(&self) -> bool {
        self.guards.is_empty() && self.interceptors.is_empty() && self.filters.is_empty()
    }

    /// A `Layers { .. }` expression, each value wrapped at the user's span so that "not a
    /// guard" lands on the guard.
    fn to_value(&self) -> TokenStream {
        let wrap = |exprs: &[Expr], wrapper: TokenStream| -> Vec<TokenStream> {
            exprs
                .iter()
                .map(|expr| quote_spanned!(expr.span()=> #wrapper::new(#expr)))
                .collect()
        };
        let guards = wrap(&self.guards, quote!(::gateway_core::__private::GuardRef));
        let interceptors = wrap(
            &self.interceptors,
            quote!(::gateway_core::__private::InterceptorRef),
        );
        let filters = wrap(&self.filters, quote!(::gateway_core::__private::FilterRef));
        quote! {
            ::gateway_core::__private::Layers {
                guards: ::std::vec![#(#guards),*],
                interceptors: ::std::vec![#(#interceptors),*],
                filters: ::std::vec![#(#filters),*],
            }
        }
    }
}

/// One argument of a handler or hook.
struct Arg {
    /// The local the shim binds it to: the user's name, or `arg{n}` for patterns.
    binding: Ident,
    ty: Type,
    /// How build-time errors name it.
    name: String,
}

/// A `#[subscribe]` method or a hook, checked.
struct Method {
    ident: Ident,
    args: Vec<Arg>,
    is_async: bool,
    /// Where errors about the returned value land.
    output_span: Span,
    layers: Layers,
}

struct Subscription {
    event: LitStr,
    method: Method,
}

/// What the impl block declares.
#[derive(Default)]
struct Model {
    gateway: Layers,
    handlers: Vec<Subscription>,
    hooks: [Option<Method>; 3],
}

/// The helper attributes found on one method.
#[derive(Default)]
struct Found {
    subscribe: Vec<Attribute>,
    hooks: Vec<(HookKind, Attribute)>,
    layers: Vec<(LayerKind, Attribute)>,
}

impl Found {
    /// Takes the helper attributes out of `attrs`.
    fn take(attrs: &mut Vec<Attribute>) -> Self {
        let mut found = Self::default();
        attrs.retain(|attr| {
            let Some(helper) = Helper::of(attr) else {
                return true;
            };
            match helper {
                Helper::Subscribe => found.subscribe.push(attr.clone()),
                Helper::Layer(kind) => found.layers.push((kind, attr.clone())),
                _ => {
                    if let Some(hook) = helper.hook() {
                        found.hooks.push((hook, attr.clone()));
                    }
                }
            }
            false
        });
        found
    }

    fn is_empty(&self) -> bool {
        self.subscribe.is_empty() && self.hooks.is_empty() && self.layers.is_empty()
    }

    fn first(&self) -> Option<&Attribute> {
        self.subscribe
            .first()
            .or(self.hooks.first().map(|(_, a)| a))
            .or(self.layers.first().map(|(_, a)| a))
    }
}

impl Model {
    fn read(item: &mut ItemImpl, errors: &mut Errors) -> Self {
        let mut model = Self::default();
        if let Some((_, trait_path, _)) = &item.trait_ {
            errors.push(syn::Error::new_spanned(
                trait_path,
                "put `#[websocket_gateway]` on the gateway's inherent `impl` block (`impl MyGateway { .. }`), not on a trait impl",
            ));
        }
        if let Some(param) = item.generics.params.first() {
            errors.push(syn::Error::new_spanned(
                param,
                "a gateway's `impl` block cannot be generic",
            ));
        }
        // `use_*` on the block itself: the gateway's scope.
        for (kind, attr) in Found::take(&mut item.attrs).layers {
            match attr::parse_layer_list(&attr, kind) {
                Ok(exprs) => model.gateway.add(kind, exprs),
                Err(err) => errors.push(err),
            }
        }
        for impl_item in &mut item.items {
            let ImplItem::Fn(method) = impl_item else {
                let attrs = match impl_item {
                    ImplItem::Const(c) => &mut c.attrs,
                    ImplItem::Type(t) => &mut t.attrs,
                    ImplItem::Macro(m) => &mut m.attrs,
                    _ => continue,
                };
                if let Some(attr) = Found::take(attrs).first() {
                    errors.push(syn::Error::new_spanned(
                        attr,
                        "this attribute goes on a method (`fn name(&self, ..)`)",
                    ));
                }
                continue;
            };
            let found = Found::take(&mut method.attrs);
            if !found.is_empty() {
                model.read_method(method, found, errors);
            }
        }
        model
    }

    fn read_method(&mut self, method: &ImplItemFn, found: Found, errors: &mut Errors) {
        let mut layers = Layers::default();
        for (kind, attr) in &found.layers {
            match attr::parse_layer_list(attr, *kind) {
                Ok(exprs) => layers.add(*kind, exprs),
                Err(err) => errors.push(err),
            }
        }
        let role = match (found.subscribe.as_slice(), found.hooks.as_slice()) {
            ([], []) => {
                if let Some((kind, attr)) = found.layers.first() {
                    errors.push(syn::Error::new_spanned(
                        attr,
                        format!(
                            "`#[{}]` applies to a `#[subscribe(\"...\")]` handler: add one to `{}`",
                            kind.attribute(),
                            method.sig.ident
                        ),
                    ));
                }
                return;
            }
            ([subscribe], []) => match attr::parse_event(subscribe) {
                Ok(event) => Role::Handler(event),
                Err(err) => return errors.push(err),
            },
            ([_, second, ..], _) => {
                return errors.push(syn::Error::new_spanned(
                    second,
                    "a method handles one event: move this `#[subscribe]` to its own method",
                ));
            }
            ([], [(hook, attr)]) => {
                if let Err(err) = attr::check_no_args(attr, *hook) {
                    return errors.push(err);
                }
                if let Some((kind, attr)) = found.layers.first() {
                    return errors.push(syn::Error::new_spanned(
                        attr,
                        format!(
                            "`#[{}]` applies to `#[subscribe]` handlers; lifecycle hooks run without pipes, guards, interceptors or filters",
                            kind.attribute()
                        ),
                    ));
                }
                Role::Hook(*hook)
            }
            (_, _) => {
                let attr = if found.subscribe.is_empty() {
                    &found.hooks[1].1
                } else {
                    &found.hooks[0].1
                };
                return errors.push(syn::Error::new_spanned(
                    attr,
                    "a method has one role: an event handler (`#[subscribe]`) or one lifecycle hook; split it into two methods",
                ));
            }
        };
        let Some(checked) = check_signature(method, layers, errors) else {
            return;
        };
        match role {
            Role::Handler(event) => {
                if let Some(first) = self
                    .handlers
                    .iter()
                    .find(|h| h.event.value() == event.value())
                {
                    return errors.push(syn::Error::new(
                        event.span(),
                        format!(
                            "event \"{}\" is already handled by `{}`: a gateway has one handler per event",
                            event.value(),
                            first.method.ident
                        ),
                    ));
                }
                self.handlers.push(Subscription {
                    event,
                    method: checked,
                });
            }
            Role::Hook(hook) => {
                let slot = &mut self.hooks[hook as usize];
                if let Some(first) = slot {
                    return errors.push(syn::Error::new_spanned(
                        &method.sig.ident,
                        format!(
                            "`#[{}]` is already on `{}`: a gateway has one",
                            hook.attribute(),
                            first.ident
                        ),
                    ));
                }
                *slot = Some(checked);
            }
        }
    }
}

enum Role {
    Handler(LitStr),
    Hook(HookKind),
}

/// Checks what the runtime can call: `&self`, no generics, owned arguments.
fn check_signature(method: &ImplItemFn, layers: Layers, errors: &mut Errors) -> Option<Method> {
    let sig = &method.sig;
    let mut ok = true;
    let mut fail = |err: syn::Error| {
        errors.push(err);
        ok = false;
    };
    if let Some(param) = sig.generics.params.first() {
        fail(syn::Error::new_spanned(
            param,
            "a handler cannot be generic: name the argument types",
        ));
    }
    match sig.receiver() {
        Some(receiver) if receiver.reference.is_some() && receiver.mutability.is_none() => {}
        Some(receiver) => fail(syn::Error::new_spanned(
            receiver,
            "a handler takes `&self`: one gateway serves every client, so keep mutable state behind a `Mutex` or an atomic",
        )),
        None => fail(syn::Error::new_spanned(
            &sig.ident,
            format!("`{}` needs `&self` as its first parameter", sig.ident),
        )),
    }
    let mut args = Vec::new();
    for (n, input) in sig.inputs.iter().enumerate() {
        let FnArg::Typed(typed) = input else {
            continue;
        };
        let ty = &*typed.ty;
        match ty {
            Type::Reference(r) => fail(syn::Error::new_spanned(
                r,
                "a handler argument is an owned value: take `String` for `&str`, `Vec<T>` for `&[T]`, `T` for `&T`",
            )),
            Type::ImplTrait(t) => fail(syn::Error::new_spanned(
                t,
                "`impl Trait` arguments are not supported: name the type",
            )),
            _ => {}
        }
        let (binding, name) = match &*typed.pat {
            Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => (
                p.ident.clone(),
                p.ident.to_string().trim_start_matches("r#").to_owned(),
            ),
            pat => (
                format_ident!("arg{}", n, span = Span::mixed_site()),
                quote!(#pat).to_string().replace(" ", ""),
            ),
        };
        args.push(Arg {
            binding,
            ty: ty.clone(),
            name,
        });
    }
    if let ReturnType::Type(_, ty) = &sig.output
        && let Type::Reference(r) = &**ty
        && !matches!(&r.lifetime, Some(l) if l.ident == "static")
    {
        fail(syn::Error::new_spanned(
            r,
            "a handler returns an owned value (or `&'static`): the reply is sent after the call returns",
        ));
    }
    ok.then(|| Method {
        ident: sig.ident.clone(),
        args,
        is_async: sig.asyncness.is_some(),
        output_span: match &sig.output {
            ReturnType::Type(_, ty) => ty.span(),
            ReturnType::Default => sig.ident.span(),
        },
        layers,
    })
}

impl Model {
    fn expand(&self, self_ty: &Type) -> TokenStream {
        let shims = self
            .handlers
            .iter()
            .map(|h| shim(&h.method, &self.gateway.pipes, Call::Reply))
            .chain(
                self.hooks
                    .iter()
                    .flatten()
                    .map(|hook| shim(hook, &[], Call::Hook)),
            );
        let handlers = self.handlers.iter().map(handler_entry);
        let hooks = (self.hooks.iter().any(Option::is_some)).then(|| {
            let [after_init, handle_connection, handle_disconnect] =
                self.hooks.each_ref().map(|hook| match hook {
                    Some(method) => {
                        let name = method.ident.to_string();
                        let call = shim_ident(&method.ident);
                        let verify = verify(method);
                        quote! {
                            ::core::option::Option::Some(::gateway_core::__private::Hook {
                                method: #name,
                                call: Self::#call,
                                verify: #verify,
                            })
                        }
                    }
                    None => quote!(::core::option::Option::None),
                });
            quote! {
                const HOOKS: ::gateway_core::__private::Hooks<Self> = ::gateway_core::__private::Hooks {
                    after_init: #after_init,
                    handle_connection: #handle_connection,
                    handle_disconnect: #handle_disconnect,
                };
            }
        });
        let layers = (!self.gateway.is_empty()).then(|| {
            let value = self.gateway.to_value();
            quote! {
                fn layers() -> ::gateway_core::__private::Layers {
                    #value
                }
            }
        });
        quote! {
            #[doc(hidden)]
            impl #self_ty {
                #(#shims)*
            }

            #[automatically_derived]
            impl ::gateway_core::__private::GatewayHandlers for #self_ty {
                const HANDLERS: &'static [::gateway_core::__private::Handler<Self>] = &[#(#handlers),*];
                #hooks
                #layers
            }
        }
    }
}

fn shim_ident(method: &Ident) -> Ident {
    format_ident!("__gateway_{}", method.to_string().trim_start_matches("r#"))
}

#[derive(Clone, Copy)]
enum Call {
    /// A handler: its value becomes the reply.
    Reply,
    /// A hook: `()` or `Result<(), E>`.
    Hook,
}

/// `fn __gateway_<method>(this, cx) -> Dispatch`: extract each argument, run the pipes on
/// it, call the method, turn what it returns into an outcome.
fn shim(method: &Method, gateway_pipes: &[Expr], call: Call) -> TokenStream {
    let this = Ident::new("this", Span::mixed_site());
    let cx = Ident::new("cx", Span::mixed_site());
    let to = Ident::new("to", Span::mixed_site());
    let name = shim_ident(&method.ident);
    let ident = &method.ident;
    let bindings: Vec<_> = method.args.iter().map(|a| &a.binding).collect();
    let extracts = method.args.iter().map(|arg| {
        let Arg { binding, ty, .. } = arg;
        let pipes = gateway_pipes
            .iter()
            .chain(&method.layers.pipes)
            .map(|pipe| {
                quote_spanned! {pipe.span()=>
                    let #binding = ::gateway_core::__private::pipe!(#cx, #ty, #binding, #pipe);
                }
            });
        let extract = quote_spanned! {ty.span()=>
            let #binding = ::gateway_core::__private::extract!(#cx, #ty);
        };
        quote!(#extract #(#pipes)*)
    });
    let span = method.output_span;
    let (await_, wrap) = if method.is_async {
        (quote!(.await), true)
    } else {
        (TokenStream::new(), false)
    };
    let value = quote!(#this.#ident(#(#bindings),*)#await_);
    let outcome = |to: TokenStream| match call {
        Call::Reply => quote_spanned!(span=> ::gateway_core::__private::reply!(#to, #value)),
        Call::Hook => quote_spanned!(span=> ::gateway_core::__private::hook_outcome(#value)),
    };
    let body = if wrap {
        let outcome = outcome(quote!(#to));
        let reply_to = matches!(call, Call::Reply).then(|| quote!(let #to = #cx.reply_to();));
        quote! {
            let #this = ::std::sync::Arc::clone(#this);
            #reply_to
            ::gateway_core::__private::Dispatch::pending(async move { #outcome })
        }
    } else {
        let outcome = outcome(quote!(#cx.reply_to()));
        quote!(::gateway_core::__private::Dispatch::ready(#outcome))
    };
    // `cx` goes unused in a shim without arguments whose reply needs no context.
    let cx_param = if method.args.is_empty() && matches!(call, Call::Hook) {
        Ident::new("_cx", Span::mixed_site())
    } else {
        cx.clone()
    };
    quote! {
        fn #name(
            #this: &::std::sync::Arc<Self>,
            #cx_param: &::gateway_core::__private::Context<'_>,
        ) -> ::gateway_core::__private::Dispatch {
            #(#extracts)*
            #body
        }
    }
}

/// `|cx| verify!(cx, "method"; "arg": Type, ..)`: the build-time check of the extractors.
fn verify(method: &Method) -> TokenStream {
    let name = method.ident.to_string();
    let args = method.args.iter().map(|arg| {
        let Arg { ty, name, .. } = arg;
        quote_spanned!(ty.span()=> #name: #ty)
    });
    quote!(|cx| ::gateway_core::__private::verify!(cx, #name; #(#args),*))
}

/// `|generator| describe!(generator, tag; Type, ..)`: the JSON Schemas of the body and the
/// reply, for AsyncAPI. The reply's type is named by a closure that calls the method and is
/// never run (which also names `impl Stream` types).
fn describe(method: &Method) -> TokenStream {
    let ident = &method.ident;
    let this = Ident::new("this", Span::mixed_site());
    let generator = Ident::new("generator", Span::mixed_site());
    let tys: Vec<_> = method.args.iter().map(|a| &a.ty).collect();
    let never = method.args.iter().map(|_| quote!(::core::unreachable!()));
    let tag = if method.is_async {
        quote!(awaited_by)
    } else {
        quote!(returned_by)
    };
    quote! {
        |#generator| {
            #[allow(unreachable_code, clippy::diverging_sub_expression)]
            let reply = ::gateway_core::__private::Tag::#tag(|#this: &'static Self| #this.#ident(#(#never),*));
            ::gateway_core::__private::describe!(#generator, reply; #(#tys),*)
        }
    }
}

fn handler_entry(handler: &Subscription) -> TokenStream {
    let Subscription { event, method } = handler;
    let name = method.ident.to_string();
    let call = shim_ident(&method.ident);
    let verify = verify(method);
    let describe = describe(method);
    let layers = if method.layers.is_empty() {
        quote!(::gateway_core::__private::Layers::default)
    } else {
        let value = method.layers.to_value();
        quote!(|| #value)
    };
    quote_spanned! {event.span()=>
        ::gateway_core::__private::Handler {
            event: #event,
            method: #name,
            call: Self::#call,
            verify: #verify,
            layers: #layers,
            describe: #describe,
            file: ::core::file!(),
            line: ::core::line!(),
        }
    }
}
