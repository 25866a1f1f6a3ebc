//! The embedded broker: librdkafka's mock cluster, a real Kafka-protocol listener
//! inside this process, so `kfn up` needs no install and `kcat` can talk to it.
//!
//! It is a development default, not a database: it keeps ~5 MiB per partition in
//! memory (older records are dropped silently), nothing survives a restart, and it
//! does not implement transactions. Use a real cluster for anything that matters.
//!
//! The mock cluster is not `Send`, so it lives on its own thread and is driven
//! through a command channel.
//!
//! Dropping the broker destroys it, unless the process said it ends with its app
//! ([`EmbeddedBroker::outlive_clients`], what `kfn up` does): then it stays up until
//! the process exits, so that clients that outlive the app close against a live
//! broker instead of logging `AllBrokersDown` on a clean Ctrl-C.

use std::ffi::{CStr, CString};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;

use rdkafka::ClientConfig;
use rdkafka::client::Client;
use rdkafka::producer::DefaultProducerContext;
use rdkafka_sys as rdsys;
use rdkafka_sys::types::RDKafkaType;

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error("could not start the embedded broker: {0}")]
    Start(String),
    #[error("embedded broker: creating topic '{topic}' failed: {message}")]
    CreateTopic { topic: String, message: String },
    #[error("the embedded broker has stopped")]
    Stopped,
}

enum Command {
    CreateTopic {
        name: String,
        partitions: i32,
        reply: mpsc::Sender<Result<(), EmbeddedError>>,
    },
}

/// Set by [`EmbeddedBroker::outlive_clients`].
static OUTLIVE_CLIENTS: AtomicBool = AtomicBool::new(false);

/// A running embedded broker; stops when dropped.
pub struct EmbeddedBroker {
    bootstrap: String,
    commands: Option<mpsc::Sender<Command>>,
    thread: Option<JoinHandle<()>>,
}

impl EmbeddedBroker {
    /// Starts a one-broker cluster on a random loopback port.
    pub fn start() -> Result<Self, EmbeddedError> {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (commands_tx, commands_rx) = mpsc::channel::<Command>();
        let thread = std::thread::Builder::new()
            .name("kfn-embedded-broker".into())
            .spawn(move || run(ready_tx, commands_rx))
            .map_err(|e| EmbeddedError::Start(e.to_string()))?;
        let bootstrap = ready_rx
            .recv()
            .map_err(|_| EmbeddedError::Start("broker thread exited".into()))??;
        Ok(Self {
            bootstrap,
            commands: Some(commands_tx),
            thread: Some(thread),
        })
    }

    /// For a process that ends when its app stops (`kfn up`): brokers dropped from now
    /// on stay up until the process exits. Clients can outlive the app by a moment (an
    /// open dashboard's event stream holds the producer until the runtime drops it; a
    /// health probe may be mid-request), and a broker that vanishes under them makes
    /// them log `AllBrokersDown` although nothing is wrong.
    pub fn outlive_clients() {
        OUTLIVE_CLIENTS.store(true, Ordering::Relaxed);
    }

    /// The `bootstrap.servers` value clients (kfn's own, kcat, ...) connect to.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// Creates `name` with `partitions` partitions (the mock does not implement the
    /// CreateTopics request, so topics are made through its own API). Creating an
    /// existing topic is not an error.
    pub fn create_topic(&self, name: &str, partitions: i32) -> Result<(), EmbeddedError> {
        let (reply, rx) = mpsc::channel();
        self.commands
            .as_ref()
            .ok_or(EmbeddedError::Stopped)?
            .send(Command::CreateTopic {
                name: name.to_string(),
                partitions,
                reply,
            })
            .map_err(|_| EmbeddedError::Stopped)?;
        rx.recv().map_err(|_| EmbeddedError::Stopped)?
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        if OUTLIVE_CLIENTS.load(Ordering::Relaxed) {
            // The thread waits on the channel (and the cluster serves) until exit.
            std::mem::forget(self.commands.take());
            return;
        }
        // Closing the channel ends the thread's loop, which destroys the cluster.
        self.commands.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(ready: mpsc::Sender<Result<String, EmbeddedError>>, commands: mpsc::Receiver<Command>) {
    let start = || -> Result<(Client<DefaultProducerContext>, *mut rdsys::rd_kafka_mock_cluster_t), EmbeddedError> {
        let config = ClientConfig::new();
        let native = config
            .create_native_config()
            .map_err(|e| EmbeddedError::Start(e.to_string()))?;
        let client = Client::new(&config, native, RDKafkaType::RD_KAFKA_PRODUCER, DefaultProducerContext)
            .map_err(|e| EmbeddedError::Start(e.to_string()))?;
        // SAFETY: the handle is valid; the cluster is destroyed below, before `client`.
        let mock = unsafe { rdsys::rd_kafka_mock_cluster_new(client.native_ptr(), 1) };
        if mock.is_null() {
            return Err(EmbeddedError::Start("rd_kafka_mock_cluster_new failed".into()));
        }
        // SAFETY: `mock` is a live cluster. Without this, every group join waits 3 s.
        unsafe { rdsys::rd_kafka_mock_group_initial_rebalance_delay_ms(mock, 0) };
        Ok((client, mock))
    };
    let (client, mock) = match start() {
        Ok(v) => v,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    // SAFETY: `mock` is live; the returned string is owned by the cluster.
    let bootstrap = unsafe { CStr::from_ptr(rdsys::rd_kafka_mock_cluster_bootstraps(mock)) }
        .to_string_lossy()
        .into_owned();
    let _ = ready.send(Ok(bootstrap));

    while let Ok(command) = commands.recv() {
        match command {
            Command::CreateTopic {
                name,
                partitions,
                reply,
            } => {
                let result = match CString::new(name.clone()) {
                    Err(_) => Err(EmbeddedError::CreateTopic {
                        topic: name,
                        message: "name contains a NUL byte".into(),
                    }),
                    Ok(cname) => {
                        // SAFETY: `mock` is live and `cname` outlives the call.
                        let err = unsafe {
                            rdsys::rd_kafka_mock_topic_create(mock, cname.as_ptr(), partitions, 1)
                        };
                        let code: rdsys::types::RDKafkaErrorCode = err.into();
                        match code {
                            rdsys::types::RDKafkaErrorCode::NoError
                            | rdsys::types::RDKafkaErrorCode::TopicAlreadyExists => Ok(()),
                            other => Err(EmbeddedError::CreateTopic {
                                topic: name,
                                message: other.to_string(),
                            }),
                        }
                    }
                };
                let _ = reply.send(result);
            }
        }
    }
    // SAFETY: destroy the cluster before the client handle it was created on.
    unsafe { rdsys::rd_kafka_mock_cluster_destroy(mock) };
    drop(client);
}
