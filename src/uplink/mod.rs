//! Cloud uplink: journal readers that deliver to MQTT and to the notification hub, at least
//! once, in order per device and topic.
//!
//! The journal is the outbox and the source of truth; each sink reads it through the
//! [`Outbox`] trait with its own cursor, and moves that cursor only when the cloud has
//! acknowledged (MQTT `PubAck`, hub `ack`). After a crash, a WAN outage or a broker restart a
//! sink re-reads from its cursor: nothing is lost, and duplicates are only re-sends of ids the
//! cloud may already have (every payload carries its journal id so consumers drop them).
//!
//! Pure parts (no IO, time passed in): [`topics`], [`envelope`], [`ledger`] (MQTT packet ids ↔
//! journal ids), [`delivery`] (lanes, window, cursor), [`pacer`], [`backoff`], [`command`]
//! validation. Thin async drivers: [`mqtt`] (rumqttc) and [`hub`] (tokio-tungstenite).
//! `docs/uplink.md` is the long form, `docs/asyncapi.yaml` the wire contract.

pub mod backoff;
pub mod command;
pub mod delivery;
pub mod envelope;
mod feed;
pub mod hub;
pub mod ledger;
pub mod mqtt;
pub mod outbox;
pub mod pacer;
pub mod status;
pub mod tls;
pub mod topics;

pub use command::{CloudCommand, CommandOutcome};
pub use hub::{HubOptions, HubSink};
pub use mqtt::{MqttOptions, MqttSink};
pub use outbox::{MemoryOutbox, Outbox, OutboxError, OutboxRecord};
pub use status::{MqttCounters, SinkBoard, SinkSnapshot};

/// Why a sink could not be started; the daemon reports it naming the setting and exits.
#[derive(Debug, thiserror::Error)]
pub enum UplinkError {
    #[error("uplink url {url:?}: {reason}")]
    Url { url: String, reason: String },
    #[error("uplink topics: {0}")]
    Topic(#[from] topics::TopicError),
    #[error("uplink TLS: {0}")]
    Tls(#[from] tls::TlsError),
}

/// Where a broker is, parsed from `mqtt://` / `mqtts://` URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

impl BrokerUrl {
    pub fn parse(url: &str) -> Result<Self, UplinkError> {
        let err = |reason: &str| UplinkError::Url {
            url: crate::config::redact_url(url),
            reason: reason.to_owned(),
        };
        let uri: tokio_tungstenite::tungstenite::http::Uri =
            url.parse().map_err(|e| err(&format!("not a URL ({e})")))?;
        let tls = match uri.scheme_str() {
            Some("mqtt") | Some("tcp") => false,
            Some("mqtts") | Some("ssl") => true,
            _ => return Err(err("scheme must be mqtt:// or mqtts://")),
        };
        let host = uri.host().ok_or_else(|| err("no host"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(if tls { 8883 } else { 1883 });
        Ok(Self { host, port, tls })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls_parse_with_default_ports() {
        let u = BrokerUrl::parse("mqtts://broker.example:8884").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.tls),
            ("broker.example", 8884, true)
        );
        assert_eq!(BrokerUrl::parse("mqtt://h").unwrap().port, 1883);
        assert_eq!(BrokerUrl::parse("mqtts://h").unwrap().port, 8883);
        assert!(BrokerUrl::parse("http://h").is_err());
        assert!(BrokerUrl::parse("not a url").is_err());
    }
}
