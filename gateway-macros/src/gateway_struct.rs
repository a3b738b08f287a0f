//! `#[websocket_gateway(path = "...")]` on a struct: the `Gateway` impl that builds it from
//! the app's providers, and its registration with `inventory`.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Fields, ItemStruct, LitStr};

use crate::attr::{GatewayArgs, Helper};

/// Expands the struct form. A broken attribute keeps the struct and its `Gateway` impl
/// (with the path `/`), so that one mistake gives one error.
pub(crate) fn expand(args: TokenStream, mut item: ItemStruct) -> TokenStream {
    let mut errors = Vec::new();
    let path = match GatewayArgs::parse(args, Span::call_site()) {
        Ok(args) => args.path,
        Err(err) => {
            errors.push(err);
            LitStr::new("/", Span::call_site())
        }
    };
    if let Some(param) = item.generics.params.first() {
        errors.push(syn::Error::new_spanned(
            param,
            "a gateway cannot be generic: the registry builds one gateway per path",
        ));
    }
    // Reported here and removed, so that the attribute does not report itself again.
    item.attrs.retain(|attr| match Helper::of(attr) {
        Some(Helper::Layer(kind)) => {
            errors.push(syn::Error::new_spanned(
                attr,
                format!(
                    "`#[{}]` goes on the gateway's `impl` block, below `#[websocket_gateway]`, or on a `#[subscribe]` method",
                    kind.attribute()
                ),
            ));
            false
        }
        _ => true,
    });
    let ident = &item.ident;
    let name = ident.to_string();
    let build = build_body(&item.fields);
    // A unit gateway reads nothing from the context.
    let cx = if item.fields.is_empty() {
        quote!(_)
    } else {
        quote!(cx)
    };
    let gateway_impl = if item.generics.params.is_empty() {
        quote! {
            #[automatically_derived]
            impl ::gateway_core::__private::Gateway for #ident {
                const PATH: &'static str = #path;
                const NAME: &'static str = #name;

                fn build(
                    #cx: &::gateway_core::__private::BuildContext<'_>,
                ) -> ::core::result::Result<Self, ::gateway_core::__private::BuildError> {
                    ::core::result::Result::Ok(#build)
                }
            }

            ::gateway_core::__private::register_gateway!(#ident);
        }
    } else {
        TokenStream::new()
    };
    let errors = errors.into_iter().map(|e| e.to_compile_error());
    quote! {
        #item
        #gateway_impl
        #(#errors)*
    }
}

/// `Self { field: resolve(cx, "field")?, .. }`, each `resolve` spanned at the field's type
/// so that "cannot be injected" lands there.
fn build_body(fields: &Fields) -> TokenStream {
    let cx = quote!(cx);
    match fields {
        Fields::Named(named) => {
            let fields = named.named.iter().map(|field| {
                let ident = field.ident.as_ref();
                let name = ident.map(ToString::to_string).unwrap_or_default();
                let ty = &field.ty;
                quote_spanned! {ty.span()=>
                    #ident: ::gateway_core::__private::resolve::<#ty>(#cx, #name)?
                }
            });
            quote!(Self { #(#fields,)* })
        }
        Fields::Unnamed(unnamed) => {
            let fields = unnamed.unnamed.iter().enumerate().map(|(i, field)| {
                let name = i.to_string();
                let ty = &field.ty;
                quote_spanned! {ty.span()=>
                    ::gateway_core::__private::resolve::<#ty>(#cx, #name)?
                }
            });
            quote!(Self(#(#fields,)*))
        }
        Fields::Unit => quote!(Self),
    }
}
