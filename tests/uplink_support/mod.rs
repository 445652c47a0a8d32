//! Shared parts of the uplink integration tests: a real Mosquitto broker on a free port, a
//! recording MQTT subscriber, and records to deliver.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, QoS};
use shuttlegate::journal::RecordKind;
use shuttlegate::uplink::OutboxRecord;
use tokio::sync::watch;

/// Sends the crate's logs to the test output (shown for failing tests).
pub fn init_logs() {
    let _ = env_logger::builder()
        .is_test(true)
        .filter_level(log::LevelFilter::Info)
        .try_init();
}

/// A free TCP port on 127.0.0.1 (the OS picks it; the listener is closed before use).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something accepts TCP connections on `port` (bounded).
pub fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A Mosquitto process with its own config and persistence directory; killed on drop.
pub struct Broker {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
    extra: String,
}

impl Broker {
    /// Starts a plain broker with persistence in `dir`.
    pub fn start(dir: &Path) -> Self {
        Self::start_with(dir, free_port(), "")
    }

    /// Starts a broker with extra listener options (TLS).
    pub fn start_with(dir: &Path, port: u16, extra: &str) -> Self {
        let mut broker = Self {
            port,
            dir: dir.to_owned(),
            child: None,
            extra: extra.to_owned(),
        };
        broker.spawn();
        broker
    }

    fn spawn(&mut self) {
        let conf = self.dir.join("mosquitto.conf");
        let persistence = self.dir.join("data");
        std::fs::create_dir_all(&persistence).unwrap();
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\nuser root\n\
                 persistence_location {p}/\nmax_queued_messages 100000\n{extra}\n",
                port = self.port,
                p = persistence.display(),
                extra = self.extra
            ),
        )
        .unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("mosquitto.log"))
            .unwrap();
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("mosquitto runs (.ci/setup installs it)");
        self.child = Some(child);
        wait_listening(self.port);
    }

    /// Stops the broker with SIGTERM (it saves its persistent sessions) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id().to_string();
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, with the same persistence.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("mosquitto.log")).unwrap_or_default()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One message as a subscriber got it.
#[derive(Debug, Clone)]
pub struct Received {
    pub topic: String,
    pub retain: bool,
    pub payload: Vec<u8>,
    /// When the subscriber got it.
    pub at: Instant,
}

/// A rumqttc subscriber (persistent session) that records every message it gets.
pub struct Subscriber {
    pub client: AsyncClient,
    pub got: Arc<Mutex<Vec<Received>>>,
    count: watch::Receiver<usize>,
    task: tokio::task::JoinHandle<()>,
}

impl Subscriber {
    /// Connects, subscribes to `filter` (QoS 1) and waits for the SubAck.
    pub async fn start(port: u16, id: &str, filter: &str) -> Self {
        let mut options = MqttOptions::new(id, "127.0.0.1", port);
        options
            .set_clean_session(false)
            .set_max_packet_size(4 << 20, 4 << 20)
            .set_keep_alive(Duration::from_secs(5));
        let (client, mut eventloop) = AsyncClient::new(options, 100);
        client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let (count_tx, count) = watch::channel(0);
        let (subscribed_tx, subscribed) = tokio::sync::oneshot::channel();
        let sink = Arc::clone(&got);
        let task = tokio::spawn(async move {
            let mut subscribed_tx = Some(subscribed_tx);
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Incoming::Publish(p))) => {
                        let mut got = sink.lock().unwrap();
                        got.push(Received {
                            topic: p.topic.clone(),
                            retain: p.retain,
                            payload: p.payload.to_vec(),
                            at: Instant::now(),
                        });
                        count_tx.send_replace(got.len());
                    }
                    Ok(Event::Incoming(Incoming::SubAck(_))) => {
                        if let Some(tx) = subscribed_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok(_) => {}
                    // The broker is down (a test restarts it): retry shortly.
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), subscribed)
            .await
            .expect("subscribed in time")
            .unwrap();
        Self {
            client,
            got,
            count,
            task,
        }
    }

    /// Waits until at least `n` messages arrived (bounded).
    pub async fn wait_for(&mut self, n: usize, within: Duration) -> Vec<Received> {
        let waited = tokio::time::timeout(within, self.count.wait_for(|c| *c >= n)).await;
        let got = self.got.lock().unwrap().clone();
        assert!(
            waited.is_ok(),
            "expected {n} messages, got {}: {:?}",
            got.len(),
            got.iter().map(|r| &r.topic).collect::<Vec<_>>()
        );
        got
    }

    pub fn snapshot(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn record(
    kind: RecordKind,
    device: &str,
    json: Option<String>,
    raw: Option<Vec<u8>>,
) -> OutboxRecord {
    OutboxRecord {
        id: 0,
        ts_ms: 1_732_400_000_000,
        kind,
        device: Some(device.into()),
        session_id: Some("s-1".into()),
        seq: None,
        json,
        raw,
    }
}

pub fn swing(device: &str, n: u64) -> OutboxRecord {
    let json = format!(
        r#"{{"type":"swing","device":"{device}","session_id":"s-1","swing_no":{n},"stroke":"smash","racket_speed_kmh":182.4}}"#
    );
    record(RecordKind::Swing, device, Some(json), None)
}

pub fn summary(device: &str) -> OutboxRecord {
    let json = r#"{"type":"analysis_complete_notification","session_id":"s-1","analysis_result":{"energy_ratio":0.71}}"#;
    record(RecordKind::Summary, device, Some(json.into()), None)
}

pub fn device_status(device: &str, battery: u8) -> OutboxRecord {
    let json = format!(
        r#"{{"type":"device_status","device":"{device}","online":true,"battery":{battery}}}"#
    );
    record(RecordKind::Event, device, Some(json), None)
}

pub fn event(device: &str) -> OutboxRecord {
    let json = r#"{"type":"command","command":"start_collection"}"#;
    record(RecordKind::Event, device, Some(json.into()), None)
}

pub fn batch(device: &str, seq: u64, body_len: usize) -> OutboxRecord {
    let body: Vec<u8> = (0..body_len).map(|i| (i as u64 * 31 + seq) as u8).collect();
    let mut r = record(RecordKind::Batch, device, None, Some(body));
    r.seq = Some(seq);
    r
}

/// The journal id in a payload (JSON envelope or binary envelope).
pub fn payload_id(payload: &[u8]) -> u64 {
    if payload.starts_with(shuttlegate::uplink::envelope::RAW_MAGIC) {
        let (header, _) = shuttlegate::uplink::envelope::decode_raw(payload).unwrap();
        return header.id;
    }
    let v: serde_json::Value = serde_json::from_slice(payload).unwrap();
    v["id"].as_u64().expect("payload has an id")
}

/// Waits until `snapshot` satisfies `pred` (bounded), returning it.
pub async fn wait_snapshot(
    rx: &mut watch::Receiver<shuttlegate::uplink::SinkSnapshot>,
    within: Duration,
    what: &str,
    pred: impl Fn(&shuttlegate::uplink::SinkSnapshot) -> bool,
) -> shuttlegate::uplink::SinkSnapshot {
    let found = match tokio::time::timeout(within, rx.wait_for(|s| pred(s))).await {
        Ok(Ok(s)) => Some(s.clone()),
        _ => None,
    };
    found.unwrap_or_else(|| {
        panic!(
            "timed out waiting for {what}; last snapshot {:?}",
            *rx.borrow()
        )
    })
}

/// A TCP proxy the test controls: it can cut every connection, refuse new ones, and switch to
/// another backend (a different broker: a fresh session for the client behind it).
pub struct Proxy {
    pub port: u16,
    backend: Arc<std::sync::atomic::AtomicU16>,
    open: Arc<std::sync::atomic::AtomicBool>,
    conns: Arc<Mutex<tokio::task::JoinSet<()>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(backend: u16) -> Self {
        use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let backend = Arc::new(AtomicU16::new(backend));
        let open = Arc::new(AtomicBool::new(true));
        let conns = Arc::new(Mutex::new(tokio::task::JoinSet::new()));
        let (b, o, c) = (Arc::clone(&backend), Arc::clone(&open), Arc::clone(&conns));
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !o.load(Ordering::SeqCst) {
                    continue; // dropped: the client sees its connection closed
                }
                let port = b.load(Ordering::SeqCst);
                c.lock().unwrap().spawn(async move {
                    if let Ok(mut server) =
                        tokio::net::TcpStream::connect(("127.0.0.1", port)).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        Self {
            port,
            backend,
            open,
            conns,
            task,
        }
    }

    /// Cuts every connection and refuses new ones (a WAN outage).
    pub fn cut(&self) {
        self.open.store(false, std::sync::atomic::Ordering::SeqCst);
        self.conns.lock().unwrap().abort_all();
    }

    /// Accepts connections again, to `backend`.
    pub fn reopen(&self, backend: u16) {
        self.backend
            .store(backend, std::sync::atomic::Ordering::SeqCst);
        self.open.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        self.conns.lock().unwrap().abort_all();
    }
}

/// Ids per (topic, device) stream from received swings and raw batches.
pub fn ids_by_stream(got: &[Received]) -> BTreeMap<String, Vec<u64>> {
    let mut by: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for r in got
        .iter()
        .filter(|r| r.topic.contains("/raw/") || r.topic.ends_with("/swings"))
    {
        let id = payload_id(&r.payload);
        let key = if r.topic.ends_with("/swings") {
            let v: serde_json::Value = serde_json::from_slice(&r.payload).unwrap();
            format!("swings/{}", v["device"].as_str().unwrap())
        } else {
            r.topic.clone()
        };
        by.entry(key).or_default().push(id);
    }
    by
}

/// Checks each stream: keeping the first copy of each id, ids increase; returns the number of
/// extra copies (re-sends).
pub fn check_order(by_stream: &BTreeMap<String, Vec<u64>>) -> usize {
    let mut duplicates = 0;
    for (stream, ids) in by_stream {
        let mut seen = std::collections::BTreeSet::new();
        let firsts: Vec<u64> = ids.iter().copied().filter(|id| seen.insert(*id)).collect();
        assert!(
            firsts.windows(2).all(|w| w[0] < w[1]),
            "{stream} out of order: {firsts:?}"
        );
        duplicates += ids.len() - firsts.len();
    }
    duplicates
}

/// The test notification hub (tests/hub: Django Channels under Daphne) on a free port.
pub struct Hub {
    pub port: u16,
    /// `(certificate, key)` PEM files: serve `wss://` instead of `ws://`.
    tls: Option<(PathBuf, PathBuf)>,
    pub record_file: PathBuf,
    secret: String,
    acks: bool,
    child: Option<Child>,
    log_file: PathBuf,
}

impl Hub {
    pub fn start(dir: &Path, secret: &str, acks: bool) -> Self {
        Self::start_with(dir, secret, acks, None)
    }

    pub fn start_with(
        dir: &Path,
        secret: &str,
        acks: bool,
        tls: Option<(PathBuf, PathBuf)>,
    ) -> Self {
        let mut hub = Self {
            port: free_port(),
            tls,
            record_file: dir.join("hub-received.jsonl"),
            secret: secret.into(),
            acks,
            child: None,
            log_file: dir.join("daphne.log"),
        };
        hub.spawn();
        hub
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_file)
            .unwrap();
        let mut command = Command::new("python3");
        command.args(["-m", "daphne"]);
        match &self.tls {
            None => command
                .args(["-b", "127.0.0.1", "-p"])
                .arg(self.port.to_string()),
            Some((cert, key)) => command.arg("-e").arg(format!(
                "ssl:{}:interface=127.0.0.1:privateKey={}:certKey={}",
                self.port,
                key.display(),
                cert.display()
            )),
        };
        let child = command
            .arg("hubproject.asgi:application")
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/hub"))
            .env("DJANGO_SETTINGS_MODULE", "hubproject.settings")
            .env("HUB_JWT_SECRET", &self.secret)
            .env("HUB_RECORD_FILE", &self.record_file)
            .env("HUB_ACKS", if self.acks { "1" } else { "0" })
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("python3 with daphne (.ci/setup installs tests/hub/requirements.txt)");
        self.child = Some(child);
        wait_listening(self.port);
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "wss" } else { "ws" };
        format!("{scheme}://127.0.0.1:{}/ws/gateway/", self.port)
    }

    /// Messages the hub recorded, in arrival order.
    pub fn received(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.record_file)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_file).unwrap_or_default()
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An HS256 JWT signed with `secret`, made by PyJWT (the hub's own library).
pub fn jwt(secret: &str, sub: &str) -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import jwt,sys,time; print(jwt.encode({'sub': sys.argv[2], 'exp': int(time.time()) + 3600}, sys.argv[1], algorithm='HS256'))",
            secret,
            sub,
        ])
        .output()
        .expect("python3 with PyJWT");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl CLI (.ci/setup installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-signed CA `{name}-ca.pem` and, when `server`, a server certificate for 127.0.0.1
/// signed by it.
pub fn make_ca(dir: &Path, name: &str) {
    let key = format!("{name}-ca.key");
    let cert = format!("{name}-ca.pem");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            &key,
            "-out",
            &cert,
            "-subj",
            &format!("/CN={name} test CA"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
}

pub fn make_server_cert(dir: &Path, ca: &str) {
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n").unwrap();
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            &format!("{ca}-ca.pem"),
            "-CAkey",
            &format!("{ca}-ca.key"),
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
}

/// A client certificate `client.pem` / `client.key` (PKCS#8) signed by the `{ca}` test CA.
pub fn make_client_cert(dir: &Path, ca: &str) {
    std::fs::write(
        dir.join("client-ext.cnf"),
        "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "client.key",
            "-out",
            "client.csr",
            "-subj",
            "/CN=shuttlegate-venue1-court1",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "client.csr",
            "-CA",
            &format!("{ca}-ca.pem"),
            "-CAkey",
            &format!("{ca}-ca.key"),
            "-CAcreateserial",
            "-out",
            "client.pem",
            "-days",
            "2",
            "-extfile",
            "client-ext.cnf",
        ],
    );
}
