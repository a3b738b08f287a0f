//! The expansion snapshot: `tests/expand/chat.rs` expanded and pretty-printed must equal
//! `tests/expand/chat.expanded.rs`. Refresh it with `UPDATE_EXPANSIONS=1 cargo test -p
//! gateway-macros`, then read the diff as a review of the generated code.

use quote::ToTokens;

use crate::attr::is_gateway_attr;
use crate::{gateway_impl, gateway_struct};

/// Expands every `#[websocket_gateway]` item of a file, as the compiler would.
fn expand_file(source: &str) -> String {
    let file: syn::File = syn::parse_str(source).expect("the input parses");
    let mut out = proc_macro2::TokenStream::new();
    for mut item in file.items {
        let attrs = match &mut item {
            syn::Item::Struct(s) => &mut s.attrs,
            syn::Item::Impl(i) => &mut i.attrs,
            _ => {
                item.to_tokens(&mut out);
                continue;
            }
        };
        let Some(at) = attrs.iter().position(is_gateway_attr) else {
            item.to_tokens(&mut out);
            continue;
        };
        let attr = attrs.remove(at);
        let args = match attr.meta {
            syn::Meta::List(list) => list.tokens,
            _ => proc_macro2::TokenStream::new(),
        };
        out.extend(match item {
            syn::Item::Struct(s) => gateway_struct::expand(args, s),
            syn::Item::Impl(i) => gateway_impl::expand(args, i),
            _ => unreachable!(),
        });
    }
    let expanded: syn::File = syn::parse2(out).expect("the expansion parses");
    prettyplease::unparse(&expanded)
}

#[test]
fn chat_gateway_expands_to_the_checked_in_code() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/expand");
    let input = std::fs::read_to_string(format!("{dir}/chat.rs")).expect("input");
    let expected_path = format!("{dir}/chat.expanded.rs");
    let actual = expand_file(&input);
    if std::env::var_os("UPDATE_EXPANSIONS").is_some() {
        std::fs::write(&expected_path, &actual).expect("write the snapshot");
        return;
    }
    let expected = std::fs::read_to_string(&expected_path)
        .expect("a snapshot: run with UPDATE_EXPANSIONS=1 to write it");
    assert!(
        actual == expected,
        "the expansion changed; if that is intended, run with UPDATE_EXPANSIONS=1 and review the diff\n{actual}"
    );
}
