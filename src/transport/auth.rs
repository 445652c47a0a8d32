//! Who may connect as a device: the court's device list with each device's token.
//!
//! Tokens come from `?token=` or `Authorization: Bearer`, and are compared in constant time
//! (`subtle`), so the comparison's duration says nothing about how much of a guess was right.
//! Devices configured `allow_tokenless` (the deployed V3.3 firmware cannot send a token) are
//! let in without one; a token they do send must still be right.

use std::collections::HashMap;

use crate::config::{DeviceAuth, Secret, Settings};

/// How one device proves itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCredential {
    /// The expected token, if one is configured.
    pub token: Option<Secret>,
    /// Accept a connection that presents no token at all.
    pub allow_tokenless: bool,
}

/// Why a handshake was refused (logged; the client only sees 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("unknown device")]
    UnknownDevice,
    #[error("missing token")]
    MissingToken,
    #[error("wrong token")]
    WrongToken,
}

/// The court's devices and their credentials.
#[derive(Debug, Clone, Default)]
pub struct DeviceDirectory {
    devices: HashMap<String, DeviceCredential>,
}

impl DeviceDirectory {
    /// The configured devices and their credentials.
    pub fn of(settings: &Settings) -> DeviceDirectory {
        DeviceDirectory::new(settings.devices.iter().map(|d| {
            let credential = DeviceCredential {
                token: match &d.auth {
                    DeviceAuth::Token(secret) => Some(secret.clone()),
                    DeviceAuth::Tokenless => None,
                },
                allow_tokenless: d.is_tokenless(),
            };
            (d.code.clone(), credential)
        }))
    }

    pub fn new(devices: impl IntoIterator<Item = (String, DeviceCredential)>) -> DeviceDirectory {
        DeviceDirectory {
            devices: devices.into_iter().collect(),
        }
    }

    pub fn contains(&self, code: &str) -> bool {
        self.devices.contains_key(code)
    }

    /// Checks a handshake: `presented` is the token from the query or the header, if any.
    pub fn admit(&self, code: &str, presented: Option<&str>) -> Result<(), Refusal> {
        let credential = self.devices.get(code).ok_or(Refusal::UnknownDevice)?;
        match (presented, &credential.token) {
            (None, _) if credential.allow_tokenless => Ok(()),
            (None, _) => Err(Refusal::MissingToken),
            (Some(given), Some(expected)) => {
                if expected.matches(given) {
                    Ok(())
                } else {
                    Err(Refusal::WrongToken)
                }
            }
            // A token offered to a device that has none configured cannot be right.
            (Some(_), None) => Err(Refusal::WrongToken),
        }
    }
}

/// The token a client presented: `?token=` first, then `Authorization: Bearer`.
pub fn presented_token<'a>(
    query_token: Option<&'a str>,
    authorization: Option<&'a str>,
) -> Option<&'a str> {
    query_token.filter(|t| !t.is_empty()).or_else(|| {
        authorization
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn directory() -> DeviceDirectory {
        DeviceDirectory::new([
            (
                "racket-01".to_owned(),
                DeviceCredential {
                    token: Some(Secret::from("s3cret")),
                    allow_tokenless: false,
                },
            ),
            (
                "v33".to_owned(),
                DeviceCredential {
                    token: None,
                    allow_tokenless: true,
                },
            ),
        ])
    }

    #[test]
    fn the_right_token_is_admitted_and_a_wrong_one_refused() {
        let d = directory();
        assert_eq!(d.admit("racket-01", Some("s3cret")), Ok(()));
        assert_eq!(
            d.admit("racket-01", Some("s3cre")),
            Err(Refusal::WrongToken)
        );
        assert_eq!(d.admit("racket-01", None), Err(Refusal::MissingToken));
    }

    #[test]
    fn unknown_devices_are_refused_whatever_they_present() {
        assert_eq!(
            directory().admit("nobody", Some("s3cret")),
            Err(Refusal::UnknownDevice)
        );
    }

    #[test]
    fn tokenless_devices_need_no_token_but_cannot_present_a_wrong_one() {
        let d = directory();
        assert_eq!(d.admit("v33", None), Ok(()));
        assert_eq!(d.admit("v33", Some("guess")), Err(Refusal::WrongToken));
    }

    #[test]
    fn the_query_token_wins_over_the_header_and_empty_ones_do_not_count() {
        assert_eq!(presented_token(Some("q"), Some("Bearer h")), Some("q"));
        assert_eq!(presented_token(Some(""), Some("Bearer h")), Some("h"));
        assert_eq!(presented_token(None, Some("Basic x")), None);
        assert_eq!(presented_token(None, Some("Bearer ")), None);
    }
}
