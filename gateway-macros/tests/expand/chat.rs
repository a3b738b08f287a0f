// The input of the expansion snapshot (`src/snapshot.rs`): a gateway with each kind of
// handler, hook and layer. The expansion is `chat.expanded.rs` beside it.

#[websocket_gateway(path = "/chat")]
pub struct ChatGateway {
    chat: Inject<ChatService>,
    server: WsServer,
}

#[websocket_gateway]
#[use_guards(WsAuthGuard)]
impl ChatGateway {
    #[subscribe("events")]
    async fn handle_event(&self, data: Value) -> Value {
        data
    }

    #[subscribe("message")]
    #[use_pipes(ValidationPipe)]
    #[use_interceptors(TransformInterceptor)]
    #[use_filters(ChatExceptionFilter)]
    fn message(&self, client: Client, body: SendMessage) -> Result<(), ChatError> {
        self.chat.send(&client, body)
    }

    #[handle_connection]
    fn connected(&self, Identity(user): Identity<User>) {
        let _ = user;
    }
}
