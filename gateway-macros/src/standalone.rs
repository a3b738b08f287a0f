//! The helper attributes where `#[websocket_gateway]` did not consume them: each says where
//! it belongs, on the attribute itself, and keeps the item so that nothing else breaks.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote};
use syn::{Item, parse_quote};

use crate::attr::{LayerKind, is_gateway_attr};

/// `#[subscribe]` and the hooks outside a gateway's impl block.
pub(crate) fn method_attribute(name: &str, args: TokenStream, item: TokenStream) -> TokenStream {
    let attribute = if args.is_empty() {
        format!("#[{name}]")
    } else {
        format!("#[{name}(...)]")
    };
    let message = format!(
        "`{attribute}` works on a method of an `impl` block marked `#[websocket_gateway]`: add `#[websocket_gateway]` to the `impl` block"
    );
    let err = syn::Error::new(Span::call_site(), message).to_compile_error();
    quote!(#item #err)
}

/// `#[use_*]` outside a gateway's impl block, or above `#[websocket_gateway]` on one.
pub(crate) fn layer_attribute(
    kind: LayerKind,
    args: TokenStream,
    item: TokenStream,
) -> TokenStream {
    let name = kind.attribute();
    match syn::parse2::<Item>(item.clone()) {
        // Above `#[websocket_gateway]`: move below it, where the gateway reads it.
        Ok(Item::Impl(mut block)) => {
            // Appended, so that several of them above keep their order.
            if block.attrs.iter().any(is_gateway_attr) {
                let ident = syn::Ident::new(name, Span::call_site());
                block
                    .attrs
                    .push(parse_quote!(#[::gateway_core::#ident(#args)]));
                return block.into_token_stream();
            }
            error(
                item,
                format!("`#[{name}]` on an `impl` block needs `#[websocket_gateway]` on it too"),
            )
        }
        Ok(Item::Struct(_)) => error(
            item,
            format!(
                "`#[{name}]` goes on the gateway's `impl` block, below `#[websocket_gateway]`, or on a `#[subscribe]` method"
            ),
        ),
        _ => error(
            item,
            format!(
                "`#[{name}]` works on a `#[subscribe]` method or on the `impl` block of a `#[websocket_gateway]`"
            ),
        ),
    }
}

fn error(item: TokenStream, message: String) -> TokenStream {
    let err = syn::Error::new(Span::call_site(), message).to_compile_error();
    quote!(#item #err)
}
