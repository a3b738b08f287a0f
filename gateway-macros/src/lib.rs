//! placeholder, being written
use proc_macro::TokenStream;
#[proc_macro_attribute]
pub fn websocket_gateway(_a: TokenStream, i: TokenStream) -> TokenStream { i }
#[proc_macro_attribute]
pub fn subscribe(_a: TokenStream, i: TokenStream) -> TokenStream { i }
#[proc_macro_attribute]
pub fn after_init(_a: TokenStream, i: TokenStream) -> TokenStream { i }
#[proc_macro_attribute]
pub fn handle_connection(_a: TokenStream, i: TokenStream) -> TokenStream { i }
#[proc_macro_attribute]
pub fn handle_disconnect(_a: TokenStream, i: TokenStream) -> TokenStream { i }
