pub struct TypingGateway;
const _: () = {
    #[automatically_derived]
    impl ::ws_gateway_core::__private::Gateway for TypingGateway {
        const PATH: &'static str = "/typing";
        const NAME: &'static str = "TypingGateway";
        fn build(
            _: &::ws_gateway_core::__private::BuildContext<'_>,
        ) -> ::core::result::Result<Self, ::ws_gateway_core::__private::BuildError> {
            ::core::result::Result::Ok(Self)
        }
    }
    ::ws_gateway_core::__private::register_gateway!(TypingGateway);
};
impl TypingGateway {
    fn typing(&self, client: Client) {
        let _ = client;
    }
    /// Only in builds with read receipts.
    #[cfg(feature = "receipts")]
    fn read(&self, message: MessageId) -> MessageId {
        message
    }
    #[cfg(feature = "receipts")]
    fn gone(&self) {}
}
const _: () = {
    fn __gateway_typing(
        this: &::std::sync::Arc<TypingGateway>,
        cx: &::ws_gateway_core::__private::Context<'_>,
    ) -> ::ws_gateway_core::__private::Dispatch {
        let client = ::ws_gateway_core::__private::arg!(cx, Client);
        ::ws_gateway_core::__private::Dispatch::ready(
            ::ws_gateway_core::__private::reply!(cx.reply_to(), this.typing(client)),
        )
    }
    #[cfg(feature = "receipts")]
    fn __gateway_read(
        this: &::std::sync::Arc<TypingGateway>,
        cx: &::ws_gateway_core::__private::Context<'_>,
    ) -> ::ws_gateway_core::__private::Dispatch {
        let message = ::ws_gateway_core::__private::arg!(cx, MessageId);
        ::ws_gateway_core::__private::Dispatch::ready(
            ::ws_gateway_core::__private::reply!(cx.reply_to(), this.read(message)),
        )
    }
    #[cfg(feature = "receipts")]
    fn __gateway_gone(
        this: &::std::sync::Arc<TypingGateway>,
        _cx: &::ws_gateway_core::__private::Context<'_>,
    ) -> ::ws_gateway_core::__private::Dispatch {
        ::ws_gateway_core::__private::Dispatch::ready(
            ::ws_gateway_core::__private::hook_outcome(this.gone()),
        )
    }
    #[automatically_derived]
    impl ::ws_gateway_core::__private::GatewayHandlers for TypingGateway {
        const HANDLERS: &'static [::ws_gateway_core::__private::Handler<Self>] = &[
            ::ws_gateway_core::__private::Handler {
                event: "typing",
                method: "typing",
                call: __gateway_typing,
                verify: |cx| {
                    ::ws_gateway_core::__private::verify!(
                        cx, "typing"; "client" : Client
                    )
                },
                layers: ::ws_gateway_core::__private::Layers::default,
                describe: |generator| {
                    #[allow(unreachable_code, clippy::diverging_sub_expression)]
                    let reply = ::ws_gateway_core::__private::Tag::returned_by(|
                        this: &'static Self|
                    this.typing(::core::unreachable!()));
                    ::ws_gateway_core::__private::describe!(generator, reply; Client)
                },
                file: ::core::file!(),
                line: ::core::line!(),
            },
            #[cfg(feature = "receipts")]
            ::ws_gateway_core::__private::Handler {
                event: "read",
                method: "read",
                call: __gateway_read,
                verify: |cx| {
                    ::ws_gateway_core::__private::verify!(
                        cx, "read"; "message" : MessageId
                    )
                },
                layers: ::ws_gateway_core::__private::Layers::default,
                describe: |generator| {
                    #[allow(unreachable_code, clippy::diverging_sub_expression)]
                    let reply = ::ws_gateway_core::__private::Tag::returned_by(|
                        this: &'static Self|
                    this.read(::core::unreachable!()));
                    ::ws_gateway_core::__private::describe!(generator, reply; MessageId)
                },
                file: ::core::file!(),
                line: ::core::line!(),
            },
        ];
        const HOOKS: ::ws_gateway_core::__private::Hooks<Self> = ::ws_gateway_core::__private::Hooks {
            #[cfg(feature = "receipts")]
            handle_disconnect: ::core::option::Option::Some(::ws_gateway_core::__private::Hook {
                method: "gone",
                call: __gateway_gone,
                verify: |cx| ::ws_gateway_core::__private::verify!(cx, "gone";),
            }),
            ..::ws_gateway_core::__private::Hooks::NONE
        };
    }
};
