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

/// Parameter names do not tell routes apart: `/tables/{id}` and `/tables/{table}` are one
/// (at paths after `/same`, so that the test above sees its pair first).
#[test]
fn one_route_with_other_parameter_names_is_a_duplicate() {
    use ws_gateway_core::BuildError;

    #[websocket_gateway(path = "/tables/{id}")]
    struct ById;
    #[websocket_gateway]
    impl ById {}

    #[websocket_gateway(path = "/tables/{table}")]
    struct ByName;
    #[websocket_gateway]
    impl ByName {}

    #[websocket_gateway(path = "/tables/{*rest}")]
    struct Rest;
    #[websocket_gateway]
    impl Rest {}

    let err = GatewayApp::new()
        .gateway::<ByName>()
        .gateway::<ById>()
        .build()
        .unwrap_err();
    assert!(
        matches!(
            err,
            BuildError::DuplicatePath {
                path: "/tables/{id}",
                first: "ById",
                second: "ByName",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .ends_with("are both mounted at path `/tables/{id}`; give one of them another path"),
        "{err}"
    );

    let err = GatewayApp::new()
        .gateway::<ById>()
        .gateway::<Rest>()
        .build()
        .unwrap_err();
    assert!(
        matches!(
            err,
            BuildError::ConflictingPaths {
                first: "Rest",
                second: "ById",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with("gateway ById (tests/duplicate_path.rs:"),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("at path `/tables/{id}` overlaps Rest (tests/duplicate_path.rs:"),
        "{err}"
    );

    // Each alone is fine, and so is a fixed path beside a parameter.
    for app in [
        GatewayApp::new().gateway::<ById>().build(),
        GatewayApp::new().gateway::<Rest>().build(),
    ] {
        app.unwrap();
    }
}
