//! The expansion snapshots: each `tests/expand/<case>.rs` expanded and pretty-printed must
//! equal `tests/expand/<case>.expanded.rs`. Refresh them with `UPDATE_EXPANSIONS=1 cargo test -p
//! ws-gateway-macros`, then read the diff as a review of the generated code.

use quote::ToTokens;

use crate::attr::is_gateway_attr;
use crate::expand;

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
        let Ok(expanded) = expand::websocket_gateway(args, item.into_token_stream()) else {
            panic!("the snapshot's input is a gateway without mistakes");
        };
        out.extend(expanded);
    }
    let expanded: syn::File = syn::parse2(out).expect("the expansion parses");
    prettyplease::unparse(&expanded)
}

/// `tests/expand/<case>.rs` expanded must equal `<case>.expanded.rs` beside it.
fn assert_expansion(case: &str) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/expand");
    let input = std::fs::read_to_string(format!("{dir}/{case}.rs")).expect("input");
    let expected_path = format!("{dir}/{case}.expanded.rs");
    let actual = expand_file(&input);
    if std::env::var_os("UPDATE_EXPANSIONS").is_some() {
        std::fs::write(&expected_path, &actual).expect("write the snapshot");
        return;
    }
    let expected = std::fs::read_to_string(&expected_path)
        .expect("a snapshot: run with UPDATE_EXPANSIONS=1 to write it");
    assert!(
        actual == expected,
        "the expansion of {case}.rs changed; if that is intended, run with UPDATE_EXPANSIONS=1 and review the diff\n{actual}"
    );
}

#[test]
fn chat_gateway_expands_to_the_checked_in_code() {
    assert_expansion("chat");
}

#[test]
fn cfg_gateway_expands_to_the_checked_in_code() {
    assert_expansion("cfg");
}
