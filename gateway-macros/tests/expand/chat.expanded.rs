pub struct ChatGateway {
    chat: Inject<ChatService>,
    server: WsServer,
}
const _: () = {
    #[automatically_derived]
    impl ::ws_gateway_core::__private::Gateway for ChatGateway {
        const PATH: &'static str = "/chat";
        const NAME: &'static str = "ChatGateway";
        fn build(
            cx: &::ws_gateway_core::__private::BuildContext<'_>,
        ) -> ::core::result::Result<Self, ::ws_gateway_core::__private::BuildError> {
            ::core::result::Result::Ok(Self {
                chat: ::ws_gateway_core::__private::resolve::<
                    Inject<ChatService>,
                >(cx, "chat")?,
                server: ::ws_gateway_core::__private::resolve::<WsServer>(cx, "server")?,
            })
        }
        fn needs(needs: &mut ::ws_gateway_core::__private::Needs) {
            ::ws_gateway_core::__private::needs!(
                needs; Inject < ChatService >, WsServer
            );
        }
    }
    ::ws_gateway_core::__private::register_gateway!(ChatGateway);
};
impl ChatGateway {
    async fn handle_event(&self, data: Value) -> Value {
        data
    }
    fn message(&self, client: Client, body: SendMessage) -> Result<(), ChatError> {
        self.chat.send(&client, body)
    }
    fn connected(&self, Identity(user): Identity<User>) {
        let _ = user;
    }
}
const _: () = {
    fn __gateway_handle_event(
        this: &::std::sync::Arc<ChatGateway>,
        cx: &::ws_gateway_core::__private::Context<'_>,
    ) -> ::ws_gateway_core::__private::Dispatch {
        let data = ::ws_gateway_core::__private::arg!(cx, Value);
        let this = ::std::sync::Arc::clone(this);
        let to = cx.reply_to();
        ::ws_gateway_core::__private::Dispatch::pending(async move {
            ::ws_gateway_core::__private::reply!(to, this.handle_event(data). await)
        })
    }
    fn __gateway_message(
        this: &::std::sync::Arc<ChatGateway>,
        cx: &::ws_gateway_core::__private::Context<'_>,
    ) -> ::ws_gateway_core::__private::Dispatch {
        let client = ::ws_gateway_core::__private::arg!(cx, Client; ValidationPipe);
        let body = ::ws_gateway_core::__private::arg!(cx, SendMessage; ValidationPipe);
        ::ws_gateway_core::__private::Dispatch::ready(
            ::ws_gateway_core::__private::reply!(
                cx.reply_to(), this.message(client, body)
            ),
        )
    }
    fn __gateway_connected(
        this: &::std::sync::Arc<ChatGateway>,
        cx: &::ws_gateway_core::__private::Context<'_>,
    ) -> ::ws_gateway_core::__private::Dispatch {
        let arg1 = ::ws_gateway_core::__private::arg!(cx, Identity < User >);
        ::ws_gateway_core::__private::Dispatch::ready(
            ::ws_gateway_core::__private::hook_outcome(this.connected(arg1)),
        )
    }
    #[automatically_derived]
    impl ::ws_gateway_core::__private::GatewayHandlers for ChatGateway {
        const HANDLERS: &'static [::ws_gateway_core::__private::Handler<Self>] = &[
            ::ws_gateway_core::__private::Handler {
                event: "events",
                method: "handle_event",
                call: __gateway_handle_event,
                verify: |cx| {
                    ::ws_gateway_core::__private::verify!(
                        cx, "handle_event"; "data" : Value
                    )
                },
                layers: ::ws_gateway_core::__private::Layers::default,
                describe: |generator| {
                    #[allow(unreachable_code, clippy::diverging_sub_expression)]
                    let reply = ::ws_gateway_core::__private::Tag::awaited_by(|
                        this: &'static Self|
                    this.handle_event(::core::unreachable!()));
                    ::ws_gateway_core::__private::describe!(generator, reply; Value)
                },
                file: ::core::file!(),
                line: ::core::line!(),
            },
            ::ws_gateway_core::__private::Handler {
                event: "message",
                method: "message",
                call: __gateway_message,
                verify: |cx| {
                    ::ws_gateway_core::__private::verify!(
                        cx, "message"; "client" : Client, "body" : SendMessage
                    )
                },
                layers: || ::ws_gateway_core::__private::Layers {
                    guards: ::std::vec![],
                    interceptors: ::std::vec![
                        ::ws_gateway_core::__private::InterceptorRef::new(TransformInterceptor)
                    ],
                    filters: ::std::vec![
                        ::ws_gateway_core::__private::FilterRef::new(ChatExceptionFilter)
                    ],
                },
                describe: |generator| {
                    #[allow(unreachable_code, clippy::diverging_sub_expression)]
                    let reply = ::ws_gateway_core::__private::Tag::returned_by(|
                        this: &'static Self|
                    this.message(::core::unreachable!(), ::core::unreachable!()));
                    ::ws_gateway_core::__private::describe!(
                        generator, reply; Client, SendMessage
                    )
                },
                file: ::core::file!(),
                line: ::core::line!(),
            },
        ];
        const HOOKS: ::ws_gateway_core::__private::Hooks<Self> = ::ws_gateway_core::__private::Hooks {
            handle_connection: ::core::option::Option::Some(::ws_gateway_core::__private::Hook {
                method: "connected",
                call: __gateway_connected,
                verify: |cx| {
                    ::ws_gateway_core::__private::verify!(
                        cx, "connected"; "Identity(user)" : Identity < User >
                    )
                },
            }),
            ..::ws_gateway_core::__private::Hooks::NONE
        };
        fn layers() -> ::ws_gateway_core::__private::Layers {
            ::ws_gateway_core::__private::Layers {
                guards: ::std::vec![
                    ::ws_gateway_core::__private::GuardRef::new(WsAuthGuard)
                ],
                interceptors: ::std::vec![],
                filters: ::std::vec![],
            }
        }
    }
};
