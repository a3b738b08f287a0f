//! The model of what the user wrote (serde's `internals/ast.rs`): the gateway struct, and
//! the `impl` block's handlers and hooks, each keeping the syn node it came from so that a
//! late rule still points at the user's tokens.
//!
//! Building the model takes our helper attributes off the user's item (so that the item can
//! be emitted as it is, whatever the checks find) and parses them ([`crate::attr`]). It
//! decides nothing about whether the gateway is right: that is [`crate::check`].

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident};
use syn::spanned::Spanned;
use syn::{
    Attribute, Expr, FnArg, Ident, ImplItem, ImplItemFn, ItemImpl, ItemStruct, LitStr, Pat,
    PatType, ReturnType, Type,
};

use crate::attr::{self, Helper, HookKind, LayerKind, LayerList, StructArgs, Subscribe};
use crate::check::Ctxt;

/// Our helper attributes, taken off one item, in the order they were written.
pub(crate) type Helpers = Vec<(Helper, Attribute)>;

/// Takes the helper attributes out of `attrs` (docs, `#[cfg]` and everything else stay).
fn take_helpers(attrs: &mut Vec<Attribute>, wanted: impl Fn(Helper) -> bool) -> Helpers {
    let mut taken = Vec::new();
    attrs.retain(|attr| match Helper::of(attr) {
        Some(helper) if wanted(helper) => {
            taken.push((helper, attr.clone()));
            false
        }
        _ => true,
    });
    taken
}

/// The `#[cfg]` attributes among `attrs`.
fn cfgs(attrs: &[Attribute]) -> Vec<&Attribute> {
    attrs.iter().filter(|attr| attr::is_cfg(attr)).collect()
}

/// `#[websocket_gateway(path = "...")] struct ...`.
pub(crate) struct GatewayStruct<'a> {
    pub(crate) node: &'a ItemStruct,
    pub(crate) args: StructArgs,
    /// `use_*` attributes found on the struct; they belong on the `impl` block.
    pub(crate) misplaced: Helpers,
    /// The struct's `#[cfg]`s, which the generated impls share.
    pub(crate) cfg: Vec<&'a Attribute>,
}

impl<'a> GatewayStruct<'a> {
    /// Takes the `use_*` attributes off the struct, where they do not belong: once
    /// reported, they must not report themselves again with another message.
    pub(crate) fn strip(item: &mut ItemStruct) -> Helpers {
        take_helpers(&mut item.attrs, |helper| matches!(helper, Helper::Layer(_)))
    }

    pub(crate) fn from_ast(
        cx: &Ctxt,
        node: &'a ItemStruct,
        args: TokenStream,
        stripped: Helpers,
    ) -> Self {
        Self {
            node,
            args: StructArgs::parse(cx, args),
            misplaced: stripped,
            cfg: cfgs(&node.attrs),
        }
    }

    pub(crate) fn ident(&self) -> &'a Ident {
        &self.node.ident
    }
}

/// The helper attributes taken off an `impl` block: the block's own, and each item's (by
/// position in `items`).
pub(crate) struct StrippedImpl {
    block: Helpers,
    items: Vec<Helpers>,
}

/// `#[websocket_gateway] impl ... { .. }`.
pub(crate) struct GatewayImpl<'a> {
    pub(crate) node: &'a ItemImpl,
    /// The `use_*` of the block, which apply to every handler.
    pub(crate) layers: Layers,
    /// The `#[subscribe]` methods, in order.
    pub(crate) handlers: Vec<Handler<'a>>,
    /// The lifecycle hook methods, in order.
    pub(crate) hooks: Vec<Hook<'a>>,
    /// Methods with `use_*` attributes but neither `#[subscribe]` nor a hook attribute.
    pub(crate) unmarked: Vec<Unmarked<'a>>,
    /// Helper attributes where no method is: on the block (other than `use_*`), or on
    /// an associated const, type or macro.
    pub(crate) stray: Vec<Attribute>,
    /// The block's `#[cfg]`s, which the generated code shares.
    pub(crate) cfg: Vec<&'a Attribute>,
}

/// One `#[subscribe("event")]` method.
pub(crate) struct Handler<'a> {
    pub(crate) subscribe: Subscribe,
    pub(crate) method: Method<'a>,
}

impl Handler<'_> {
    pub(crate) fn event(&self) -> &LitStr {
        &self.subscribe.event
    }
}

/// One lifecycle hook method.
pub(crate) struct Hook<'a> {
    pub(crate) kind: HookKind,
    pub(crate) method: Method<'a>,
}

/// A method with `use_*` attributes only.
pub(crate) struct Unmarked<'a> {
    pub(crate) node: &'a ImplItemFn,
    pub(crate) layers: Layers,
}

/// A handler or hook method, as the shim calls it.
pub(crate) struct Method<'a> {
    pub(crate) node: &'a ImplItemFn,
    pub(crate) args: Vec<Arg<'a>>,
    /// The method's own `use_*`.
    pub(crate) layers: Layers,
    /// Role attributes after the one that gave the method its role (a method has one).
    pub(crate) extra_roles: Helpers,
    /// The method's `#[cfg]`s, copied onto its shim and its table entry so that a method
    /// configured out takes them along.
    pub(crate) cfg: Vec<&'a Attribute>,
}

impl<'a> Method<'a> {
    fn from_ast(node: &'a ImplItemFn, layers: Layers, extra_roles: Helpers) -> Self {
        let args = node
            .sig
            .inputs
            .iter()
            .enumerate()
            .filter_map(|(n, input)| match input {
                FnArg::Typed(typed) => Some(Arg::from_ast(n, typed)),
                FnArg::Receiver(_) => None,
            })
            .collect();
        Self {
            node,
            args,
            layers,
            extra_roles,
            cfg: cfgs(&node.attrs),
        }
    }

    pub(crate) fn ident(&self) -> &'a Ident {
        &self.node.sig.ident
    }

    /// The method's name without `r#`, for messages and tables.
    pub(crate) fn name(&self) -> String {
        unraw(self.ident())
    }

    pub(crate) fn is_async(&self) -> bool {
        self.node.sig.asyncness.is_some()
    }

    /// Where errors about the returned value land: the return type, or the name.
    pub(crate) fn output_span(&self) -> Span {
        match &self.node.sig.output {
            ReturnType::Type(_, ty) => ty.span(),
            ReturnType::Default => self.ident().span(),
        }
    }
}

/// One argument of a handler or hook.
pub(crate) struct Arg<'a> {
    pub(crate) node: &'a PatType,
    /// The local the shim binds it to: the user's name, or `argN` for a pattern.
    pub(crate) binding: Ident,
    /// How build-time errors name it: `client`, `Identity(user)`.
    pub(crate) name: String,
}

impl<'a> Arg<'a> {
    /// `position` counts the receiver, so that `arg1` is the first argument after `self`.
    fn from_ast(position: usize, node: &'a PatType) -> Self {
        let (binding, name) = match &*node.pat {
            Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => {
                (p.ident.clone(), unraw(&p.ident))
            }
            pat => (
                format_ident!("arg{}", position, span = Span::mixed_site()),
                pat.to_token_stream().to_string().replace(' ', ""),
            ),
        };
        Self {
            node,
            binding,
            name,
        }
    }

    pub(crate) fn ty(&self) -> &'a Type {
        &self.node.ty
    }
}

fn unraw(ident: &Ident) -> String {
    ident.to_string().trim_start_matches("r#").to_owned()
}

/// The `use_*` lists of one scope, as written.
#[derive(Default)]
pub(crate) struct Layers {
    pub(crate) lists: Vec<LayerList>,
}

impl Layers {
    fn parse(cx: &Ctxt, helpers: &Helpers) -> Self {
        let lists = helpers
            .iter()
            .filter_map(|(helper, attr)| match helper {
                Helper::Layer(kind) => Some(LayerList::parse(cx, *kind, attr.clone())),
                _ => None,
            })
            .collect();
        Self { lists }
    }

    /// The entries of one kind, in order.
    pub(crate) fn of(&self, kind: LayerKind) -> impl Iterator<Item = &Expr> {
        self.lists
            .iter()
            .filter(move |list| list.kind == kind)
            .flat_map(|list| &list.exprs)
    }

    /// Whether the scope has guards, interceptors or filters, the runtime's `Layers` (its
    /// pipes run in the shim).
    pub(crate) fn has_runtime_layers(&self) -> bool {
        self.lists.iter().any(|list| list.kind != LayerKind::Pipes)
    }
}

impl<'a> GatewayImpl<'a> {
    /// Takes every helper attribute off the block and its items.
    pub(crate) fn strip(item: &mut ItemImpl) -> StrippedImpl {
        let block = take_helpers(&mut item.attrs, |_| true);
        let items = item
            .items
            .iter_mut()
            .map(|impl_item| match impl_item {
                ImplItem::Fn(f) => take_helpers(&mut f.attrs, |_| true),
                ImplItem::Const(c) => take_helpers(&mut c.attrs, |_| true),
                ImplItem::Type(t) => take_helpers(&mut t.attrs, |_| true),
                ImplItem::Macro(m) => take_helpers(&mut m.attrs, |_| true),
                _ => Vec::new(),
            })
            .collect();
        StrippedImpl { block, items }
    }

    pub(crate) fn from_ast(
        cx: &Ctxt,
        node: &'a ItemImpl,
        args: TokenStream,
        stripped: StrippedImpl,
    ) -> Self {
        // The block takes nothing but `crate = ".."`, which the expansion read already.
        attr::check_impl_args(cx, args);
        let mut gateway = Self {
            node,
            layers: Layers::parse(cx, &stripped.block),
            handlers: Vec::new(),
            hooks: Vec::new(),
            unmarked: Vec::new(),
            stray: stripped
                .block
                .into_iter()
                .filter(|(helper, _)| !matches!(helper, Helper::Layer(_)))
                .map(|(_, attr)| attr)
                .collect(),
            cfg: cfgs(&node.attrs),
        };
        for (impl_item, helpers) in node.items.iter().zip(stripped.items) {
            if helpers.is_empty() {
                continue;
            }
            match impl_item {
                ImplItem::Fn(method) => gateway.add_method(cx, method, helpers),
                _ => gateway
                    .stray
                    .extend(helpers.into_iter().map(|(_, attr)| attr)),
            }
        }
        gateway
    }

    /// Sorts a method by its role: `#[subscribe]` if it has one, else its first hook
    /// attribute. The other role attributes stay with it, for [`crate::check`].
    fn add_method(&mut self, cx: &Ctxt, node: &'a ImplItemFn, helpers: Helpers) {
        let layers = Layers::parse(cx, &helpers);
        let mut roles: Helpers = helpers
            .into_iter()
            .filter(|(helper, _)| !matches!(helper, Helper::Layer(_)))
            .collect();
        let Some(first) = roles
            .iter()
            .position(|(helper, _)| *helper == Helper::Subscribe)
            .or((!roles.is_empty()).then_some(0))
        else {
            self.unmarked.push(Unmarked { node, layers });
            return;
        };
        let (role, attr) = roles.remove(first);
        let method = Method::from_ast(node, layers, roles);
        match role {
            Helper::Subscribe => {
                // Unreadable: reported, and the method is left out rather than guessed at.
                if let Some(subscribe) = Subscribe::parse(cx, &attr) {
                    self.handlers.push(Handler { subscribe, method });
                }
            }
            Helper::Hook(kind) => self.hooks.push(Hook {
                kind: attr::parse_hook(cx, kind, &attr),
                method,
            }),
            // Filtered out above.
            Helper::Layer(_) => {}
        }
    }

    pub(crate) fn self_ty(&self) -> &'a Type {
        &self.node.self_ty
    }
}
