//! The simulator's side of the gateway's admin HTTP hooks: starting and ending sessions, as an
//! operator would, so V3.3 hubs (which wait for `start_collection`) can be driven from outside.

use serde_json::{Value, json};

/// A failed admin call, with what the gateway said.
#[derive(Debug, thiserror::Error)]
#[error("admin {path}: {reason}")]
pub struct AdminError {
    pub path: String,
    pub reason: String,
}

/// Calls the admin API of the gateway at `base` (`ws://` or `http://`).
#[derive(Clone)]
pub struct AdminClient {
    base: String,
    token: Option<String>,
}

/// Without the admin token, so the client can be logged.
impl std::fmt::Debug for AdminClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminClient")
            .field("base", &self.base)
            .field("token", &self.token.as_ref().map(|_| "…"))
            .finish()
    }
}

impl AdminClient {
    pub fn new(base: &str, token: Option<String>) -> AdminClient {
        let base = base
            .trim_end_matches('/')
            .replacen("ws://", "http://", 1)
            .replacen("wss://", "https://", 1);
        AdminClient { base, token }
    }

    /// POSTs `body` to `path`; blocking, so run off the reactor.
    async fn post(&self, path: String, body: Value) -> Result<Value, AdminError> {
        let token = self.token.clone().ok_or_else(|| AdminError {
            path: path.clone(),
            reason: "no admin token given (--admin-token or SHUTTLEGATE_ADMIN_TOKEN)".into(),
        })?;
        let url = format!("{}{path}", self.base);
        let call = move || -> Result<Value, String> {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build()
                .into();
            let mut response = agent
                .post(&url)
                .header("Authorization", &format!("Bearer {token}"))
                .send_json(&body)
                .map_err(|e| e.to_string())?;
            let status = response.status();
            let value: Value = response.body_mut().read_json().map_err(|e| e.to_string())?;
            if status.is_success() {
                Ok(value)
            } else {
                Err(format!(
                    "HTTP {status}: {}",
                    value["error"].as_str().unwrap_or("")
                ))
            }
        };
        tokio::task::spawn_blocking(call)
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r)
            .map_err(|reason| AdminError { path, reason })
    }

    pub async fn start_session(
        &self,
        device: &str,
        session_id: Option<&str>,
    ) -> Result<Value, AdminError> {
        self.post(
            format!("/api/devices/{device}/sessions"),
            json!({ "session_id": session_id }),
        )
        .await
    }

    pub async fn end_session(&self, device: &str) -> Result<Value, AdminError> {
        self.post(format!("/api/devices/{device}/sessions/end"), json!({}))
            .await
    }

    pub async fn command(
        &self,
        device: &str,
        command: &str,
        params: Value,
    ) -> Result<Value, AdminError> {
        self.post(
            format!("/api/devices/{device}/commands"),
            json!({ "command": command, "params": params }),
        )
        .await
    }

    pub async fn start_sessions(&self, devices: &[String]) -> Result<(), AdminError> {
        for device in devices {
            self.start_session(device, None).await?;
        }
        Ok(())
    }

    pub async fn end_sessions(&self, devices: &[String]) -> Result<(), AdminError> {
        for device in devices {
            self.end_session(device).await?;
        }
        Ok(())
    }
}
