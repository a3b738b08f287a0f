//! The build order of an app: every factory and gateway is a node, keyed by the type it
//! provides, with the types it declared it needs ([`Needs`]). A depth-first walk puts each
//! node after its needs, and stops at the first cycle or missing dependency, naming the
//! chain, before any factory runs. Then [`Resolution::step`] runs the nodes in that order:
//! sync factories and gateway constructors at once, async factories as futures for
//! `build_async` to await.
//!
//! Values given to `provide` are built already; every served gateway's [`ServerOf`] is
//! provided before anything runs, so depending on a server orders nothing.
//!
//! [`ServerOf`]: crate::ServerOf

use std::any::TypeId;

use futures_util::future::BoxFuture;
use rustc_hash::FxHashMap;

use crate::error::BuildError;
use crate::factory::{Factory, Make};
use crate::inject::{BuildContext, Instance, Need, Needs, Providers};
use crate::registry::{GatewayDescriptor, registered};
use crate::server::WsServer;

/// `Pool` for `my_app::db::Pool`, `Arc<Pool>` for `alloc::sync::Arc<my_app::db::Pool>`.
pub(crate) fn short(type_name: &str) -> String {
    disqualified::ShortName(type_name).to_string()
}

enum Kind {
    Factory(Make),
    /// The index of its descriptor.
    Gateway(usize),
}

struct Node {
    id: TypeId,
    name: String,
    needs: Vec<Need>,
    /// Taken when it runs.
    kind: Option<Kind>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    New,
    Visiting,
    Done,
}

/// What [`Resolution::step`] did.
pub(crate) enum Step {
    /// Ran one node.
    Ran,
    /// An async factory started: await it, then [`put`](Resolution::put) its value.
    Await(TypeId, BoxFuture<'static, Result<Instance, BuildError>>),
    /// Everything is built.
    Done,
}

/// An app's providers and gateways being built, in dependency order.
pub(crate) struct Resolution {
    nodes: Vec<Node>,
    order: std::vec::IntoIter<usize>,
    providers: Providers,
    descriptors: Vec<GatewayDescriptor>,
    servers: Vec<WsServer>,
    instances: Vec<Option<Instance>>,
}

/// The gateways built, each with its instance and server, and every provider.
pub(crate) struct Built {
    pub(crate) providers: Providers,
    pub(crate) gateways: Vec<(GatewayDescriptor, Instance, WsServer)>,
}

impl Resolution {
    /// Orders the factories and gateways.
    ///
    /// # Errors
    ///
    /// [`BuildError::DependencyCycle`] and [`BuildError::MissingDependency`], naming the
    /// chain. A gateway's own field that nobody provides is left for its constructor to
    /// report, with the field's name.
    pub(crate) fn plan(
        mut providers: Providers,
        factories: Vec<Factory>,
        descriptors: Vec<GatewayDescriptor>,
    ) -> Result<Self, BuildError> {
        let servers: Vec<WsServer> = descriptors
            .iter()
            .map(|d| (d.open_server)(&mut providers))
            .collect();
        let gateway_ids: Vec<TypeId> = descriptors.iter().map(|d| (d.type_id)()).collect();
        let mut nodes: Vec<Node> = factories
            .into_iter()
            // A served gateway is its own provider.
            .filter(|f| !gateway_ids.contains(&f.id))
            .map(|f| Node {
                id: f.id,
                name: short(f.name),
                needs: f.needs.list,
                kind: Some(Kind::Factory(f.make)),
            })
            .collect();
        for (i, d) in descriptors.iter().enumerate() {
            let mut needs = Needs::default();
            (d.needs)(&mut needs);
            nodes.push(Node {
                id: (d.type_id)(),
                name: d.name.to_owned(),
                needs: needs.list,
                kind: Some(Kind::Gateway(i)),
            });
        }
        let order = order(&nodes, &providers)?;
        Ok(Self {
            nodes,
            order: order.into_iter(),
            providers,
            instances: descriptors.iter().map(|_| None).collect(),
            descriptors,
            servers,
        })
    }

    /// The type of the first async factory, if there is one.
    pub(crate) fn first_async(&self) -> Option<&str> {
        self.nodes
            .iter()
            .find(|node| matches!(node.kind, Some(Kind::Factory(Make::Async(_)))))
            .map(|node| node.name.as_str())
    }

    /// Runs the next node in order.
    ///
    /// # Errors
    ///
    /// What a factory or a gateway's constructor failed with.
    pub(crate) fn step(&mut self) -> Result<Step, BuildError> {
        let Some(i) = self.order.next() else {
            return Ok(Step::Done);
        };
        let node = &mut self.nodes[i];
        match node.kind.take() {
            Some(Kind::Factory(Make::Sync(make))) => {
                let value = make(&self.providers)?;
                self.providers.insert_erased(node.id, value);
            }
            Some(Kind::Factory(Make::Async(make))) => {
                return Ok(Step::Await(node.id, make(&self.providers)?));
            }
            Some(Kind::Gateway(d)) => {
                let descriptor = &self.descriptors[d];
                let cx = BuildContext {
                    gateway: descriptor.name,
                    providers: &self.providers,
                    server: &self.servers[d],
                };
                let instance = (descriptor.instantiate)(&cx)?;
                self.providers.insert_erased(node.id, instance.clone());
                self.instances[d] = Some(instance);
            }
            None => {}
        }
        Ok(Step::Ran)
    }

    /// Stores what an awaited async factory built.
    pub(crate) fn put(&mut self, id: TypeId, value: Instance) {
        self.providers.insert_erased(id, value);
    }

    /// Every gateway with its instance, once [`step`](Self::step) is done.
    pub(crate) fn finish(self) -> Built {
        let gateways = self
            .descriptors
            .into_iter()
            .zip(self.instances)
            .zip(self.servers)
            .filter_map(|((d, instance), server)| Some((d, instance?, server)))
            .collect();
        Built {
            providers: self.providers,
            gateways,
        }
    }
}

/// The nodes in dependency order: each after everything it needs. Roots are taken in the
/// order given (factories as they were added, then gateways), so that what declares nothing
/// still finds every factory that depends on no gateway built before it.
fn order(nodes: &[Node], ready: &Providers) -> Result<Vec<usize>, BuildError> {
    let index: FxHashMap<TypeId, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, node)| (node.id, i))
        .collect();
    let mut walk = Walk {
        nodes,
        index: &index,
        ready,
        state: vec![State::New; nodes.len()],
        stack: Vec::new(),
        order: Vec::with_capacity(nodes.len()),
    };
    for root in 0..nodes.len() {
        walk.visit(root)?;
    }
    Ok(walk.order)
}

struct Walk<'a> {
    nodes: &'a [Node],
    index: &'a FxHashMap<TypeId, usize>,
    ready: &'a Providers,
    state: Vec<State>,
    /// The nodes being visited, from the root: the chain an error names.
    stack: Vec<usize>,
    order: Vec<usize>,
}

impl Walk<'_> {
    fn visit(&mut self, i: usize) -> Result<(), BuildError> {
        if self.state[i] == State::Done {
            return Ok(());
        }
        self.state[i] = State::Visiting;
        self.stack.push(i);
        let node = &self.nodes[i];
        for need in &node.needs {
            match self.index.get(&need.id) {
                Some(&j) => match self.state[j] {
                    State::Done => {}
                    State::Visiting => return Err(self.cycle(j)),
                    State::New => self.visit(j)?,
                },
                None if need.optional || self.ready.contains(need.id) => {}
                // A gateway's field reports it when the gateway is built, with its name.
                None if matches!(node.kind, Some(Kind::Gateway(_))) => {}
                None => return Err(self.missing(need)),
            }
        }
        self.stack.pop();
        self.state[i] = State::Done;
        self.order.push(i);
        Ok(())
    }

    fn names(&self, from: usize) -> Vec<String> {
        self.stack[from..]
            .iter()
            .map(|&k| self.nodes[k].name.clone())
            .collect()
    }

    /// `j` is on the stack: the chain from there back to it.
    fn cycle(&self, j: usize) -> BuildError {
        let from = self.stack.iter().position(|&k| k == j).unwrap_or(0);
        let mut chain = self.names(from);
        chain.push(self.nodes[j].name.clone());
        BuildError::DependencyCycle { chain }
    }

    /// The node on top of the stack needs `need`, which nothing provides.
    fn missing(&self, need: &Need) -> BuildError {
        let provider = self
            .stack
            .last()
            .map(|&k| self.nodes[k].name.clone())
            .unwrap_or_default();
        let needs = short(need.name);
        let mut chain = self.names(0);
        chain.push(needs.clone());
        // A registered gateway that this app does not serve: its instance or its server.
        let gateway = registered()
            .into_iter()
            .find(|d| (d.type_id)() == need.id || (d.server_id)() == need.id)
            .map(|d| d.name);
        BuildError::MissingDependency {
            provider,
            needs,
            chain,
            gateway,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Inject;

    struct Pool;
    struct Repo;
    struct Cache;
    struct Service;

    fn factory<Args: 'static, T: Send + Sync + 'static>(
        f: impl crate::FactoryFn<Args, Output = T>,
    ) -> Factory {
        Factory::sync(f, Ok::<T, BuildError>)
    }

    fn plan(factories: Vec<Factory>) -> Result<Resolution, BuildError> {
        Resolution::plan(Providers::default(), factories, Vec::new())
    }

    fn run(factories: Vec<Factory>) -> Result<Providers, BuildError> {
        let mut resolution = plan(factories)?;
        while let Step::Ran = resolution.step()? {}
        Ok(resolution.finish().providers)
    }

    #[test]
    fn factories_run_after_what_they_need_whatever_the_order_they_were_given_in() {
        let providers = run(vec![
            factory(|_: Inject<Repo>, _: Inject<Cache>| Service),
            factory(|_: Inject<Pool>| Repo),
            factory(|_: Inject<Pool>| Cache),
            factory(|| Pool),
        ])
        .unwrap();
        assert!(providers.get::<Service>().is_some());
    }

    #[test]
    fn a_cycle_names_its_chain() {
        let err = plan(vec![
            factory(|_: Inject<Cache>| Repo),
            factory(|_: Inject<Service>| Cache),
            factory(|_: Inject<Repo>| Service),
        ])
        .err()
        .unwrap();
        assert_eq!(
            err.to_string(),
            "can't resolve dependencies: Repo -> Cache -> Service -> Repo is a cycle; break it, e.g. a provider that only sends to a gateway's clients can take `ServerOf<G>` instead of the gateway"
        );
        assert!(matches!(err, BuildError::DependencyCycle { chain } if chain.len() == 4));
    }

    #[test]
    fn a_factory_that_needs_itself_is_a_cycle() {
        let err = plan(vec![factory(|_: Option<Inject<Repo>>| Repo)])
            .err()
            .unwrap();
        assert!(
            matches!(&err, BuildError::DependencyCycle { chain } if chain == &["Repo", "Repo"])
        );
    }

    #[test]
    fn a_missing_dependency_names_who_needed_it() {
        let err = plan(vec![factory(|_: Inject<Pool>| Repo)]).err().unwrap();
        assert_eq!(
            err.to_string(),
            "can't resolve dependencies of Repo: Repo needs `Pool`, which was not provided; add `.provide(...)` or a factory of `Pool` to the GatewayApp builder"
        );
    }

    #[test]
    fn a_missing_dependency_deeper_down_names_the_chain() {
        let err = plan(vec![
            factory(|_: Inject<Repo>| Service),
            factory(|_: std::sync::Arc<Pool>| Repo),
        ])
        .err()
        .unwrap();
        assert_eq!(
            err.to_string(),
            "can't resolve dependencies of Repo: Repo needs `Pool`, which was not provided (Service -> Repo -> Pool); add `.provide(...)` or a factory of `Pool` to the GatewayApp builder"
        );
    }

    #[test]
    fn an_optional_dependency_orders_but_is_not_required() {
        // `Cache` is optional and absent; `Pool` is optional and built by a later factory.
        let providers = run(vec![
            factory(|cache: Option<Inject<Cache>>, pool: Option<Inject<Pool>>| {
                assert!(cache.is_none() && pool.is_some());
                Repo
            }),
            factory(|| Pool),
        ])
        .unwrap();
        assert!(providers.get::<Repo>().is_some());
    }

    #[test]
    fn a_failing_factory_names_its_type_and_keeps_the_cause() {
        let failing = Factory::sync(
            |_: Inject<Pool>| Err::<Repo, _>("no such table"),
            |r: Result<Repo, &str>| r.map_err(crate::factory::failed::<Repo, _>),
        );
        let err = run(vec![factory(|| Pool), failing]).err().unwrap();
        assert_eq!(err.to_string(), "the factory of Repo failed: no such table");
        assert_eq!(
            std::error::Error::source(&err).unwrap().to_string(),
            "no such table"
        );
    }

    #[test]
    fn short_names_drop_module_paths() {
        assert_eq!(
            short(std::any::type_name::<std::sync::Arc<Pool>>()),
            "Arc<Pool>"
        );
    }
}
