//! Two gateways registered at one path: `build()` fails and names both.

use ws_gateway_axum::prelude::*;

#[websocket_gateway(path = "/same")]
struct First;

#[websocket_gateway]
impl First {}

#[websocket_gateway(path = "/same")]
struct Second;

#[websocket_gateway]
impl Second {}

#[test]
fn build_names_both_gateways_and_where_they_are() {
    let err = GatewayApp::new().build().unwrap_err().to_string();
    assert!(err.starts_with("gateways First (tests/duplicate_path.rs:5) and Second (tests/duplicate_path.rs:11) are both mounted at path `/same`"), "{err}");
}

#[test]
fn choosing_one_of_them_builds() {
    let app = GatewayApp::new().gateway::<Second>().build().unwrap();
    assert_eq!(app.gateways().len(), 1);
    assert_eq!(app.gateways()[0].name(), "Second");
}
