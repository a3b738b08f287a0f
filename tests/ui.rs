//! Compile-fail and pass cases of the macros. The `.stderr` files are the error messages
//! users read: review a diff of them like a diff of docs. Refresh with
//! `TRYBUILD=overwrite cargo test -p gateway-tests --test ui` (the toolchain is 1.95 stable).

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("ui/pass/*.rs");
    t.compile_fail("ui/fail/*.rs");
}
