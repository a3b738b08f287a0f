use ws_gateway_core::prelude::*;

struct Config;
struct Repo;

#[websocket_gateway(path = "/repo")]
pub struct RepoGateway {
    repo: Inject<Repo>,
}

#[websocket_gateway]
impl RepoGateway {}

fn main() {
    // A factory's arguments are dependencies (`Inject<Config>`), not the values themselves.
    let _ = GatewayApp::new().provide_factory(|_config: Config| Repo);
}
