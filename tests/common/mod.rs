//! Shared harness for integration tests: the real `shuttlegate` binary on port 0 with a
//! temporary state directory, and WebSocket clients speaking to it.

#![allow(dead_code)] // each test binary uses a different part of the harness

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

pub const BIN: &str = env!("CARGO_BIN_EXE_shuttlegate");

/// The admin token of [`config`] (the daemon refuses one under 16 characters).
pub const ADMIN_TOKEN: &str = "admin-secret-for-tests";

/// A court configuration for tests: `devices` are `(code, token)`; `None` = tokenless.
pub fn config(state_dir: &Path, devices: &[(&str, Option<&str>)], extra: &str) -> String {
    let mut toml = format!(
        r#"[gateway]
venue = "test-venue"
court = "court-1"
state_dir = "{}"
timezone = "Asia/Shanghai"
# What tests assert is exact; the kernel's clock verdict differs per machine (the probe is
# driven in process by tests/admin_conditions.rs, and read for real by a unit test).
clock_check = false

[http]
listen = "127.0.0.1:0"

[auth]
admin_token = "{ADMIN_TOKEN}"

{extra}
"#,
        state_dir.display()
    );
    for (code, token) in devices {
        toml.push_str("\n[[devices]]\n");
        toml.push_str(&format!("code = \"{code}\"\n"));
        match token {
            Some(t) => toml.push_str(&format!("token = \"{t}\"\n")),
            None => toml.push_str("allow_tokenless = true\n"),
        }
    }
    toml
}

/// The real daemon, as a child process.
pub struct Gateway {
    pub child: Child,
    pub addr: SocketAddr,
    pub dir: PathBuf,
    pub config_path: PathBuf,
    stderr: mpsc::Receiver<String>,
}

impl Gateway {
    /// Writes `config` to `dir/court.toml` and starts the daemon on it; returns once it is ready.
    pub fn start(dir: &Path, config: &str) -> Gateway {
        let config_path = dir.join("court.toml");
        std::fs::write(&config_path, config).expect("write config");
        Gateway::start_with(dir, &config_path)
    }

    /// Starts the daemon on an existing config file (restarts reuse the same state).
    pub fn start_with(dir: &Path, config_path: &Path) -> Gateway {
        Gateway::launch(Command::new(BIN), dir, config_path)
    }

    /// Writes `config` and starts the daemon under `prlimit --nofile=N:N`, as systemd's default
    /// of 1,024 descriptors would run it (prlimit execs the daemon: the child's PID is its).
    pub fn start_with_nofile(dir: &Path, config: &str, nofile: u32) -> Gateway {
        let config_path = dir.join("court.toml");
        std::fs::write(&config_path, config).expect("write config");
        let mut command = Command::new("prlimit");
        command.arg(format!("--nofile={nofile}:{nofile}")).arg(BIN);
        Gateway::launch(command, dir, &config_path)
    }

    /// Starts `command` (the daemon, or a wrapper that execs it) with `run -c config_path`.
    fn launch(mut command: Command, dir: &Path, config_path: &Path) -> Gateway {
        let mut child = command
            .args(["run", "-c"])
            .arg(config_path)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn shuttlegate");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let (addr_tx, addr_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("shuttlegate listening http=") {
                    let _ = addr_tx.send(addr.trim().to_owned());
                }
            }
        });
        let (err_tx, err_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if err_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let addr = match addr_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(a) => a.parse().expect("address"),
            Err(_) => {
                let _ = child.kill();
                let log: Vec<String> = err_rx.try_iter().collect();
                panic!(
                    "gateway did not become ready in 30 s; stderr:\n{}",
                    log.join("\n")
                );
            }
        };
        Gateway {
            child,
            addr,
            dir: dir.to_path_buf(),
            config_path: config_path.to_path_buf(),
            stderr: err_rx,
        }
    }

    pub fn ws_url(&self, device: &str) -> String {
        format!("ws://{}/ws/esp32/{device}/", self.addr)
    }

    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Log lines printed so far.
    pub fn log(&self) -> Vec<String> {
        self.stderr.try_iter().collect()
    }

    /// The log printed so far, gathered until it holds every one of `needles` (the log reaches
    /// the test through a pipe, a moment after the answers it explains); panics after `timeout`.
    pub fn log_holding(&self, needles: &[&str], timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        let mut log = String::new();
        while !needles.iter().all(|n| log.contains(n)) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) => {
                    log.push_str(&line);
                    log.push('\n');
                }
                Err(_) => panic!("the log lacks one of {needles:?} after {timeout:?}:\n{log}"),
            }
        }
        log.extend(self.log().into_iter().map(|line| line + "\n"));
        log
    }

    /// Waits until a log line contains `needle`, or panics after `timeout`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!("no log line containing {needle:?} within {timeout:?}"),
            }
        }
    }

    /// SIGKILL, no goodbye.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for exit (bounded).
    pub fn terminate(mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill -TERM");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("gateway did not exit within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `journal export` of this gateway's state, parsed.
    pub fn export(&self, extra: &[&str]) -> Vec<Value> {
        export(&self.dir, extra)
    }

    /// Calls the admin API.
    pub fn admin(&self, path: &str, body: Value) -> (u16, Value) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut response = agent
            .post(&self.http_url(path))
            .header("Authorization", format!("Bearer {ADMIN_TOKEN}"))
            .send_json(&body)
            .expect("admin call");
        let status = response.status().as_u16();
        let value = response.body_mut().read_json().unwrap_or(Value::Null);
        (status, value)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `shuttlegate journal export --state-dir DIR --format jsonl`, parsed line by line.
pub fn export(state_dir: &Path, extra: &[&str]) -> Vec<Value> {
    let out = Command::new(BIN)
        .args(["journal", "export", "--state-dir"])
        .arg(state_dir)
        .args(["--format", "jsonl"])
        .args(extra)
        .output()
        .expect("journal export");
    assert!(
        out.status.success(),
        "journal export failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("export line is JSON"))
        .collect()
}

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects as a device; panics if refused.
pub async fn connect(url: &str) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .unwrap_or_else(|e| panic!("connect {url}: {e}"));
    ws
}

pub async fn send(ws: &mut Ws, value: &Value) {
    ws.send(Message::text(value.to_string()))
        .await
        .expect("send");
}

/// Next text message as JSON (10 s bound).
pub async fn recv(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a message within 10 s")
            .expect("connection open")
            .expect("no error");
        match msg {
            Message::Text(t) => return serde_json::from_str(t.as_str()).expect("JSON"),
            Message::Close(f) => panic!("closed: {f:?}"),
            _ => {}
        }
    }
}

/// Next message of `type_`, skipping others (pushes, heartbeats).
pub async fn recv_type(ws: &mut Ws, type_: &str) -> Value {
    loop {
        let v = recv(ws).await;
        if v["type"] == type_ {
            return v;
        }
    }
}

/// Waits for the server to close; returns the close code.
pub async fn closed_with(ws: &mut Ws) -> u16 {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(15), ws.next())
            .await
            .expect("close within 15 s");
        match msg {
            Some(Ok(Message::Close(Some(frame)))) => return u16::from(frame.code),
            Some(Ok(Message::Close(None))) | None => return 1005,
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("error instead of a close frame: {e}"),
        }
    }
}

/// Runs `players` court-simulated compact racket devices (`player-01`…, tokens
/// `token-player-01`…, 200 Hz, batches of 40) against `gw` for `duration`, then checks each
/// sent `upload_complete`.
pub async fn play_court(gw: &Gateway, players: usize, duration: Duration, seed: u64) {
    use shuttlegate_sim::client::Firmware;
    use shuttlegate_sim::fleet::{self, FleetOptions, FleetProgress, Motion};
    let options = FleetOptions {
        url: format!("ws://{}", gw.addr),
        devices: players,
        firmware: Firmware::Compact,
        rate_hz: 200.0,
        duration,
        code_prefix: "player-".into(),
        token_prefix: Some("token-player-".into()),
        batch_samples: 40,
        utc_offset_s: 8 * 3600,
        seed,
        motion: Motion::Court,
    };
    let reports = tokio::time::timeout(
        duration + Duration::from_secs(40),
        fleet::run(options, std::sync::Arc::new(FleetProgress::default()), None),
    )
    .await
    .expect("fleet finishes");
    for (code, r) in &reports {
        assert!(r.as_ref().expect("device ran").upload_complete, "{code}");
    }
}

/// An HTTP/1.1 response's head and `content-length` body, without its `date` header.
pub async fn read_response(stream: &mut tokio::net::TcpStream) -> String {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().expect("a length"))
                })
                .unwrap_or(0);
            if bytes.len() >= end + 4 + length {
                return text
                    .split_inclusive("\r\n")
                    .filter(|l| !l.to_ascii_lowercase().starts_with("date:"))
                    .collect();
            }
        }
        let n = tokio::io::AsyncReadExt::read(stream, &mut chunk)
            .await
            .expect("read");
        assert!(n > 0, "connection closed mid-response: {text}");
        bytes.extend_from_slice(&chunk[..n]);
    }
}
