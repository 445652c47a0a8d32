//! Phones prove who they are with a JWT the cloud signed; this checks one.
//!
//! Two layers, kept apart so the rules are testable without keys or clocks:
//! - the signature and the algorithm, by `jsonwebtoken` (ring backend): exactly the configured
//!   algorithm is accepted; `alg: none` is not even an algorithm to it, so it cannot pass;
//! - the claims, by [`check_claims`] (pure, `now` passed in): `sub` must equal the phone's
//!   `user_id` as text (a numeric `sub` as its decimal text, since the cloud's user ids are
//!   database integers), `exp` is required and honoured with [`LEEWAY_S`], `nbf` likewise when
//!   present, and `aud` / `iss` are checked when configured.
//!
//! Every failure is one [`JwtError`]; the caller logs it and answers the generic 401.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use crate::config::{JwtAlgorithm, JwtKey, JwtSettings};

/// Clock difference tolerated between the cloud that signs and the gateway that checks.
pub const LEEWAY_S: i64 = 30;

/// Why a phone's token was refused (logged; the phone sees only the 401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("no JWT key is configured (auth.jwt_secret or auth.jwt_public_key_file)")]
    NoKey,
    #[error("no token presented")]
    Missing,
    #[error("signature, algorithm or encoding refused: {0}")]
    Signature(String),
    #[error("`sub` is {found}, not the user id of the URL")]
    WrongSubject { found: String },
    #[error("`exp` is missing or not a number")]
    NoExpiry,
    #[error("expired at {exp} (now {now}, leeway {LEEWAY_S} s)")]
    Expired { exp: i64, now: i64 },
    #[error("not valid before {nbf} (now {now})")]
    NotYetValid { nbf: i64, now: i64 },
    #[error("`aud` does not name this gateway's audience")]
    WrongAudience,
    #[error("`iss` is not the configured issuer")]
    WrongIssuer,
}

/// What an accepted token grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Unix seconds after which (plus [`LEEWAY_S`]) the phone's socket is closed.
    pub expires_at: i64,
}

/// Verifies `token` for `user_id` at `now_s` (unix seconds) under `settings`.
pub fn verify(
    settings: Option<&JwtSettings>,
    token: Option<&str>,
    user_id: &str,
    now_s: i64,
) -> Result<Verified, JwtError> {
    let settings = settings.ok_or(JwtError::NoKey)?;
    let token = token.ok_or(JwtError::Missing)?;
    let claims = signed_claims(settings, token)?;
    check_claims(&claims, user_id, settings, now_s)
}

/// The token's claims if its signature is good under the one configured algorithm.
fn signed_claims(settings: &JwtSettings, token: &str) -> Result<Value, JwtError> {
    let bad = |e: jsonwebtoken::errors::Error| JwtError::Signature(e.to_string());
    let (algorithm, key) = match &settings.key {
        JwtKey::Shared(secret) => (
            Algorithm::HS256,
            DecodingKey::from_secret(secret.expose().as_bytes()),
        ),
        JwtKey::Public { algorithm, pem } => match algorithm {
            JwtAlgorithm::Rs256 => (
                Algorithm::RS256,
                DecodingKey::from_rsa_pem(pem).map_err(bad)?,
            ),
            JwtAlgorithm::Es256 => (
                Algorithm::ES256,
                DecodingKey::from_ec_pem(pem).map_err(bad)?,
            ),
            // Settings never pair HS256 with a public key.
            JwtAlgorithm::Hs256 => return Err(JwtError::NoKey),
        },
    };
    // Only the signature and the algorithm here; every claim is checked by `check_claims`.
    let mut validation = Validation::new(algorithm);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .map(|data| data.claims)
        .map_err(bad)
}

/// The claim rules (pure): see the module doc.
pub fn check_claims(
    claims: &Value,
    user_id: &str,
    settings: &JwtSettings,
    now_s: i64,
) -> Result<Verified, JwtError> {
    let subject = match &claims["sub"] {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) if n.is_u64() || n.is_i64() => Some(n.to_string()),
        _ => None,
    };
    if subject.as_deref() != Some(user_id) {
        return Err(JwtError::WrongSubject {
            found: subject.map_or_else(
                || "absent or not text".to_owned(),
                |s| format!("`{}`", shuttlegate_core::protocol::untrusted::clip(&s)),
            ),
        });
    }
    let exp = seconds(&claims["exp"]).ok_or(JwtError::NoExpiry)?;
    if now_s > exp.saturating_add(LEEWAY_S) {
        return Err(JwtError::Expired { exp, now: now_s });
    }
    if let Some(nbf) = seconds(&claims["nbf"])
        && now_s < nbf.saturating_sub(LEEWAY_S)
    {
        return Err(JwtError::NotYetValid { nbf, now: now_s });
    }
    if let Some(audience) = &settings.audience {
        let names_us = match &claims["aud"] {
            Value::String(a) => a == audience,
            Value::Array(all) => all.iter().any(|a| a.as_str() == Some(audience)),
            _ => false,
        };
        if !names_us {
            return Err(JwtError::WrongAudience);
        }
    }
    if let Some(issuer) = &settings.issuer
        && claims["iss"].as_str() != Some(issuer)
    {
        return Err(JwtError::WrongIssuer);
    }
    Ok(Verified { expires_at: exp })
}

/// A NumericDate: whole seconds (a fractional one is cut to its second).
fn seconds(value: &Value) -> Option<i64> {
    value
        .as_i64()
        .or_else(|| value.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    use jsonwebtoken::{EncodingKey, Header};
    use proptest::prelude::*;
    use serde_json::json;

    use crate::config::Secret;

    const NOW: i64 = 1_790_000_000;

    fn hs256(audience: Option<&str>, issuer: Option<&str>) -> JwtSettings {
        JwtSettings {
            key: JwtKey::Shared(Secret::from("cloud-secret")),
            audience: audience.map(str::to_owned),
            issuer: issuer.map(str::to_owned),
        }
    }

    fn sign(claims: &Value, secret: &str) -> String {
        jsonwebtoken::encode(
            &Header::default(),
            claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    #[test]
    fn a_token_signed_with_the_secret_for_this_user_is_accepted_until_its_expiry() {
        let settings = hs256(None, None);
        let token = sign(&json!({"sub": "u-42", "exp": NOW + 60}), "cloud-secret");
        assert_eq!(
            verify(Some(&settings), Some(&token), "u-42", NOW),
            Ok(Verified {
                expires_at: NOW + 60
            })
        );
        assert_eq!(
            verify(Some(&settings), Some(&token), "u-43", NOW),
            Err(JwtError::WrongSubject {
                found: "`u-42`".into()
            })
        );
        assert!(matches!(
            verify(Some(&settings), Some(&token), "u-42", NOW + 91),
            Err(JwtError::Expired { .. })
        ));
        let forged = sign(&json!({"sub": "u-42", "exp": NOW + 60}), "guess");
        assert!(matches!(
            verify(Some(&settings), Some(&forged), "u-42", NOW),
            Err(JwtError::Signature(_))
        ));
        assert_eq!(
            verify(None, Some(&token), "u-42", NOW),
            Err(JwtError::NoKey)
        );
        assert_eq!(
            verify(Some(&settings), None, "u-42", NOW),
            Err(JwtError::Missing)
        );
    }

    #[test]
    fn alg_none_and_other_algorithms_are_refused() {
        let settings = hs256(None, None);
        let claims = json!({"sub": "u-42", "exp": NOW + 60});
        // `{"alg":"none","typ":"JWT"}`, base64url, before the claims of a real token, unsigned.
        let signed = sign(&claims, "cloud-secret");
        let payload = signed.split('.').nth(1).unwrap();
        let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
        assert!(matches!(
            verify(Some(&settings), Some(&none), "u-42", NOW),
            Err(JwtError::Signature(_))
        ));
        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &claims,
            &EncodingKey::from_secret(b"cloud-secret"),
        )
        .unwrap();
        assert!(matches!(
            verify(Some(&settings), Some(&hs512), "u-42", NOW),
            Err(JwtError::Signature(_))
        ));
    }

    #[test]
    fn es256_tokens_verify_with_the_public_key_and_the_key_used_as_an_hmac_secret_does_not() {
        let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/jwt/");
        let public = std::fs::read(format!("{fixtures}es256-public.pem")).unwrap();
        let private = std::fs::read(format!("{fixtures}es256-private-pkcs8.pem")).unwrap();
        let settings = JwtSettings {
            key: JwtKey::Public {
                algorithm: JwtAlgorithm::Es256,
                pem: public.clone(),
            },
            audience: None,
            issuer: None,
        };
        let claims = json!({"sub": "u-42", "exp": NOW + 60});
        let es256 = jsonwebtoken::encode(
            &Header::new(Algorithm::ES256),
            &claims,
            &EncodingKey::from_ec_pem(&private).unwrap(),
        )
        .unwrap();
        assert!(verify(Some(&settings), Some(&es256), "u-42", NOW).is_ok());
        // The classic confusion: HS256 "signed" with the public key's text as the secret.
        let confused = jsonwebtoken::encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(&public),
        )
        .unwrap();
        assert!(matches!(
            verify(Some(&settings), Some(&confused), "u-42", NOW),
            Err(JwtError::Signature(_))
        ));
    }

    #[test]
    fn audience_and_issuer_are_checked_only_when_configured() {
        let claims = json!({"sub": "7", "exp": NOW, "aud": ["x", "gw"], "iss": "cloud"});
        assert!(check_claims(&claims, "7", &hs256(Some("gw"), Some("cloud")), NOW).is_ok());
        assert!(check_claims(&claims, "7", &hs256(None, None), NOW).is_ok());
        assert_eq!(
            check_claims(&claims, "7", &hs256(Some("other"), None), NOW),
            Err(JwtError::WrongAudience)
        );
        assert_eq!(
            check_claims(&claims, "7", &hs256(None, Some("evil")), NOW),
            Err(JwtError::WrongIssuer)
        );
        assert_eq!(
            check_claims(&json!({"sub": "7"}), "7", &hs256(None, None), NOW),
            Err(JwtError::NoExpiry)
        );
    }

    proptest! {
        #[test]
        fn a_subject_matches_exactly_when_its_text_equals_the_user_id(
            sub in prop_oneof![
                any::<u64>().prop_map(|n| json!(n)),
                "[0-9a-z-]{0,6}".prop_map(|s| json!(s)),
            ],
            user in "[0-9a-z-]{0,6}",
            exp_offset in -200i64..200,
        ) {
            let claims = json!({"sub": sub, "exp": NOW + exp_offset});
            let text = match &sub { Value::String(s) => s.clone(), other => other.to_string() };
            let result = check_claims(&claims, &user, &hs256(None, None), NOW);
            if text != user {
                prop_assert!(
                    matches!(result, Err(JwtError::WrongSubject { .. })),
                    "{:?}",
                    result
                );
            } else if exp_offset < -LEEWAY_S {
                prop_assert!(matches!(result, Err(JwtError::Expired { .. })), "{:?}", result);
            } else {
                prop_assert_eq!(result, Ok(Verified { expires_at: NOW + exp_offset }));
            }
        }
    }
}
