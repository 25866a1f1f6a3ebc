//! One store, several instances: a store query is answered here for the partitions
//! this instance holds and gathered from the owners of the others, found through the
//! stage's consumer group ([`crate::kafka::Sink::partition_owners`]). The answer says
//! which instance gave which partitions and whether any are missing (e.g. mid-
//! rebalance, while a partition's new owner restores it).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use serde::{Deserialize, Serialize};

use crate::config::HttpToken;
use crate::kafka::Sink;
use crate::window::{CurrentWindow, WindowRow, WindowStore};

/// How long gathering from one other instance may take.
const PEER_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a store's partitions are assigned: its stage's group and topic.
#[derive(Debug, Clone)]
pub struct StoreRoute {
    pub group: String,
    pub topic: String,
}

/// This instance's place among the instances of its application.
#[derive(Debug, Clone, Default)]
pub struct Cluster {
    /// This instance's HTTP address, as the others see it.
    pub advertise: String,
    pub routes: BTreeMap<String, StoreRoute>,
    /// Sent to the other instances (they run the same kfn.yaml, so the same token)
    /// in case they guard reads too (`http.auth: all`).
    pub token: Option<HttpToken>,
}

/// Windows of a store (all in a range, or each key's current one), and where they
/// came from.
#[derive(Debug, Serialize, Deserialize)]
pub struct StoreWindows<T = WindowRow> {
    pub name: String,
    pub windows: Vec<T>,
    /// Partitions of the store's topic.
    pub partitions: i32,
    /// Whether every partition answered.
    pub complete: bool,
    /// Partitions nobody answered for.
    pub missing: Vec<i32>,
    pub instances: Vec<Source>,
}

/// What one instance contributed.
#[derive(Debug, Serialize, Deserialize)]
pub struct Source {
    pub instance: String,
    pub partitions: Vec<i32>,
    pub error: Option<String>,
}

/// A window that says which partition's state holds it.
pub trait Partitioned {
    fn partition(&self) -> i32;
}

impl Partitioned for WindowRow {
    fn partition(&self) -> i32 {
        self.partition
    }
}

impl Partitioned for CurrentWindow {
    fn partition(&self) -> i32 {
        self.partition
    }
}

/// What a store query asks for.
#[derive(Debug, Clone, Copy)]
pub enum Query {
    /// Every window overlapping `[from, to)`.
    Range { from: Option<i64>, to: Option<i64> },
    /// Each key's current window.
    Current,
}

impl Query {
    fn path(&self, name: &str) -> String {
        match *self {
            Query::Range { from, to } => {
                let mut path = format!("/api/stores/{name}?local=true");
                if let Some(from) = from {
                    path.push_str(&format!("&from={from}"));
                }
                if let Some(to) = to {
                    path.push_str(&format!("&to={to}"));
                }
                path
            }
            Query::Current => format!("/api/stores/{name}/current?local=true"),
        }
    }
}

/// This instance's part of the answer.
pub fn local<T>(store: &WindowStore, advertise: &str, windows: Vec<T>) -> StoreWindows<T> {
    let here = store.partitions();
    StoreWindows {
        name: store.name().to_string(),
        windows,
        partitions: here.len() as i32,
        complete: false,
        missing: Vec::new(),
        instances: vec![Source {
            instance: advertise.to_string(),
            partitions: here,
            error: None,
        }],
    }
}

/// Every window of `store` overlapping `[from, to)`, gathered from every instance.
pub async fn gather_range(
    store: &WindowStore,
    cluster: &Cluster,
    sink: &Sink,
    from: Option<i64>,
    to: Option<i64>,
) -> StoreWindows {
    let here = local(store, &cluster.advertise, store.query(from, to));
    let mut answer = gather(store, cluster, sink, Query::Range { from, to }, here).await;
    answer
        .windows
        .sort_by(|a, b| (a.start, a.end, &a.key).cmp(&(b.start, b.end, &b.key)));
    answer
}

/// Each key's current window of `store`, gathered from every instance.
pub async fn gather_current(
    store: &WindowStore,
    cluster: &Cluster,
    sink: &Sink,
) -> StoreWindows<CurrentWindow> {
    let here = local(store, &cluster.advertise, store.current_windows());
    let mut answer = gather(store, cluster, sink, Query::Current, here).await;
    answer.windows.sort_by(|a, b| a.key.cmp(&b.key));
    answer
}

/// The whole answer: this instance's part, then each other owner's.
async fn gather<T>(
    store: &WindowStore,
    cluster: &Cluster,
    sink: &Sink,
    query: Query,
    mut answer: StoreWindows<T>,
) -> StoreWindows<T>
where
    T: Partitioned + serde::de::DeserializeOwned,
{
    let Some(route) = cluster.routes.get(store.name()).cloned() else {
        return answer;
    };
    let (lookup, r) = (sink.clone(), route.clone());
    let held = answer.instances[0].partitions.len();
    let found = tokio::task::spawn_blocking(move || {
        let total = lookup.partition_count(&r.topic, PEER_TIMEOUT)?.unwrap_or(0);
        // Holding every partition (one instance): no one else to ask.
        if usize::try_from(total).is_ok_and(|t| t == held) {
            return Ok((total, BTreeMap::new()));
        }
        let owners = lookup.partition_owners(&r.group, &r.topic, PEER_TIMEOUT)?;
        Ok::<_, rdkafka::error::KafkaError>((total, owners))
    })
    .await;
    let (total, owners) = match found {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => {
            answer.instances[0].error =
                Some(format!("cannot ask the group who owns the rest: {e}"));
            return answer;
        }
        Err(e) => {
            answer.instances[0].error = Some(e.to_string());
            return answer;
        }
    };
    answer.partitions = total;
    let mut covered: BTreeSet<i32> = answer.instances[0].partitions.iter().copied().collect();

    let mut remote: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for (p, addr) in owners {
        if addr != cluster.advertise && !covered.contains(&p) {
            remote.entry(addr).or_default().push(p);
        }
    }
    let path = query.path(store.name());
    let asks = remote.into_iter().map(|(addr, wanted)| {
        let path = path.clone();
        let token = cluster.token.as_ref();
        async move {
            let got = tokio::time::timeout(
                PEER_TIMEOUT,
                get_json::<StoreWindows<T>>(&addr, &path, token),
            )
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {PEER_TIMEOUT:?}")));
            (addr, wanted, got)
        }
    });
    for (addr, wanted, got) in futures::future::join_all(asks).await {
        match got {
            Ok(theirs) => {
                let given: Vec<i32> = theirs
                    .instances
                    .iter()
                    .flat_map(|s| s.partitions.iter().copied())
                    .filter(|p| wanted.contains(p) && !covered.contains(p))
                    .collect();
                answer.windows.extend(
                    theirs
                        .windows
                        .into_iter()
                        .filter(|row| given.contains(&row.partition())),
                );
                covered.extend(&given);
                answer.instances.push(Source {
                    instance: addr,
                    partitions: given,
                    error: None,
                });
            }
            Err(error) => answer.instances.push(Source {
                instance: addr,
                partitions: Vec::new(),
                error: Some(error),
            }),
        }
    }
    answer.missing = (0..total).filter(|p| !covered.contains(p)).collect();
    answer.complete = answer.missing.is_empty();
    answer
}

/// GETs `path` from the instance at `addr` and decodes its JSON.
async fn get_json<T: serde::de::DeserializeOwned>(
    addr: &str,
    path: &str,
    token: Option<&HttpToken>,
) -> Result<T, String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let mut request = hyper::Request::get(path).header(hyper::header::HOST, addr);
    if let Some(token) = token {
        request = request.header(
            hyper::header::AUTHORIZATION,
            format!("Bearer {}", token.expose()),
        );
    }
    let request = request
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    if !status.is_success() {
        return Err(format!("{status}: {}", String::from_utf8_lossy(&body)));
    }
    serde_json::from_slice(&body).map_err(|e| format!("bad answer: {e}"))
}
