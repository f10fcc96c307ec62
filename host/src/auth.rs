//! Bearer tokens with scopes. A token is kept only as its SHA-256 hash and
//! compared in constant time, so neither the config's memory nor timing
//! gives it away. With no tokens configured every request is allowed (the
//! server refuses to start that way on a non-loopback address unless told
//! to).

use std::path::Path;

use serde::Deserialize;
use sha2::{Digest, Sha256};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Send telemetry to the OTLP receivers.
    Ingest,
    /// Read data: the query and export API.
    Query,
    /// Operate the server: /metrics (and later reload).
    Admin,
}

impl Scope {
    pub fn name(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Query => "query",
            Scope::Admin => "admin",
        }
    }
}

/// One token as configured: the token itself or its SHA-256 (hex).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Names the token in logs; never sent to clients.
    pub name: String,
    /// The token as clients send it. Prefer `sha256` in files others may read.
    #[serde(default)]
    pub token: Option<String>,
    /// The token's SHA-256 as 64 hex digits (`printf %s TOKEN | sha256sum`).
    #[serde(default)]
    pub sha256: Option<String>,
    /// What it may do: any of "ingest", "query", "admin".
    pub scopes: Vec<Scope>,
}

/// A token file: `[[tokens]]` entries, as in the config's `[auth]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFile {
    #[serde(default)]
    tokens: Vec<TokenConfig>,
}

#[derive(Debug, Clone)]
struct Token {
    hash: [u8; 32],
    scopes: Vec<Scope>,
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// No token, not a bearer token, or not one we know.
    Unauthenticated,
    /// A known token without the scope the endpoint needs.
    Forbidden(Scope),
}

impl Denied {
    pub fn reason(self) -> &'static str {
        match self {
            Denied::Unauthenticated => "unauthenticated",
            Denied::Forbidden(_) => "forbidden",
        }
    }

    /// What the client is told: no more than it needs.
    pub fn message(self) -> String {
        match self {
            Denied::Unauthenticated => {
                "a valid bearer token is required (Authorization: Bearer <token>)".into()
            }
            Denied::Forbidden(scope) => {
                format!("this token does not have the \"{}\" scope", scope.name())
            }
        }
    }
}

/// The tokens the server accepts.
#[derive(Debug, Clone, Default)]
pub struct Auth {
    tokens: Vec<Token>,
}

fn hash(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

/// Equal in time that does not depend on where the bytes differ.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Auth {
    /// Checks and hashes configured tokens, plus those of `file`.
    pub fn new(tokens: &[TokenConfig], file: Option<&Path>) -> Result<Self, String> {
        let mut all = tokens.to_vec();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("auth.token_file {}: {e}", path.display()))?;
            let parsed: TokenFile = toml::from_str(&text)
                .map_err(|e| format!("auth.token_file {}: {e}", path.display()))?;
            all.extend(parsed.tokens);
        }
        let mut names = std::collections::HashSet::new();
        let mut out = Vec::new();
        for t in &all {
            let at = format!("auth token \"{}\"", t.name);
            if t.name.is_empty() {
                return Err("every auth token needs a name".into());
            }
            if !names.insert(t.name.clone()) {
                return Err(format!("{at}: the name is used twice"));
            }
            if t.scopes.is_empty() {
                return Err(format!("{at}: scopes is empty"));
            }
            let hash = match (&t.token, &t.sha256) {
                (Some(token), None) if token.len() >= 16 => hash(token.as_bytes()),
                (Some(_), None) => {
                    return Err(format!("{at}: a token needs 16 characters or more"));
                }
                (None, Some(hex_hash)) => hex::decode(hex_hash.trim())
                    .ok()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .ok_or_else(|| format!("{at}: sha256 must be 64 hex digits"))?,
                _ => return Err(format!("{at}: set exactly one of token and sha256")),
            };
            out.push(Token {
                hash,
                scopes: t.scopes.clone(),
            });
        }
        Ok(Self { tokens: out })
    }

    /// Whether any token is configured (else everything is allowed).
    pub fn enabled(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// Checks an `Authorization` header value for `scope`.
    pub fn check(&self, authorization: Option<&[u8]>, scope: Scope) -> Result<(), Denied> {
        if !self.enabled() {
            return Ok(());
        }
        let presented = authorization
            .and_then(|v| {
                let (kind, token) = v.split_at(v.iter().position(|&b| b == b' ')?);
                kind.eq_ignore_ascii_case(b"bearer")
                    .then(|| token.trim_ascii())
            })
            .filter(|t| !t.is_empty())
            .ok_or(Denied::Unauthenticated)?;
        let presented = hash(presented);
        // Every token is compared, matched or not, so timing says nothing
        // about which (if any) matched.
        let mut found: Option<&Token> = None;
        for token in &self.tokens {
            if same(&token.hash, &presented) {
                found = Some(token);
            }
        }
        match found {
            None => Err(Denied::Unauthenticated),
            Some(t) if t.scopes.contains(&scope) => Ok(()),
            Some(_) => Err(Denied::Forbidden(scope)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(name: &str, token: &str, scopes: &[Scope]) -> TokenConfig {
        TokenConfig {
            name: name.into(),
            token: Some(token.into()),
            sha256: None,
            scopes: scopes.to_vec(),
        }
    }

    #[test]
    fn tokens_are_checked_by_hash_and_scope() {
        let hashed = TokenConfig {
            name: "reader".into(),
            token: None,
            sha256: Some(hex::encode(Sha256::digest(b"reader-token-0123456789"))),
            scopes: vec![Scope::Query],
        };
        let auth = Auth::new(
            &[
                token("app", "ingest-token-0123456789", &[Scope::Ingest]),
                hashed,
            ],
            None,
        )
        .unwrap();
        let check = |h: &str, s| auth.check(Some(h.as_bytes()), s);
        assert_eq!(
            check("Bearer ingest-token-0123456789", Scope::Ingest),
            Ok(())
        );
        assert_eq!(
            check("bearer  ingest-token-0123456789 ", Scope::Ingest),
            Ok(())
        );
        assert_eq!(
            check("Bearer ingest-token-0123456789", Scope::Query),
            Err(Denied::Forbidden(Scope::Query))
        );
        assert_eq!(
            check("Bearer reader-token-0123456789", Scope::Query),
            Ok(())
        );
        assert_eq!(
            check("Bearer wrong", Scope::Query),
            Err(Denied::Unauthenticated)
        );
        assert_eq!(
            check("Basic abc", Scope::Query),
            Err(Denied::Unauthenticated)
        );
        assert_eq!(check("Bearer", Scope::Query), Err(Denied::Unauthenticated));
        assert_eq!(auth.check(None, Scope::Admin), Err(Denied::Unauthenticated));
        assert_eq!(Auth::default().check(None, Scope::Admin), Ok(()));
    }

    #[test]
    fn bad_token_configs_are_refused() {
        for (t, needle) in [
            (token("a", "short", &[Scope::Query]), "16 characters"),
            (token("a", "long-enough-token-123", &[]), "scopes is empty"),
            (
                TokenConfig {
                    name: "a".into(),
                    token: None,
                    sha256: Some("abc".into()),
                    scopes: vec![Scope::Query],
                },
                "64 hex digits",
            ),
            (
                TokenConfig {
                    name: "a".into(),
                    token: None,
                    sha256: None,
                    scopes: vec![Scope::Query],
                },
                "exactly one",
            ),
        ] {
            let err = Auth::new(&[t], None).unwrap_err();
            assert!(err.contains(needle), "{err}");
        }
        let dup = [
            token("a", "long-enough-token-123", &[Scope::Query]),
            token("a", "long-enough-token-456", &[Scope::Query]),
        ];
        assert!(Auth::new(&dup, None).unwrap_err().contains("twice"));
    }
}

/// The check as the listeners use it: counts every refusal. Clones share
/// one set of tokens, which a reload replaces for all of them at once.
#[derive(Debug, Clone)]
pub struct Guard {
    auth: std::sync::Arc<crate::swap::Swap<Auth>>,
    metrics: std::sync::Arc<crate::telemetry::Metrics>,
}

impl Guard {
    pub fn new(auth: Auth, metrics: std::sync::Arc<crate::telemetry::Metrics>) -> Self {
        Self {
            auth: std::sync::Arc::new(crate::swap::Swap::new(auth)),
            metrics,
        }
    }

    /// Requests checked from now on use `auth`'s tokens.
    pub fn replace(&self, auth: Auth) {
        self.auth.store(auth);
    }

    /// Checks a request's headers for `scope`.
    pub fn check(&self, headers: &http::HeaderMap, scope: Scope) -> Result<(), Denied> {
        let value = headers
            .get(http::header::AUTHORIZATION)
            .map(|v| v.as_bytes());
        self.auth.load().check(value, scope).inspect_err(|denied| {
            self.metrics
                .auth_refused
                .get_or_create(&crate::telemetry::AuthLabel {
                    scope: scope.name(),
                    reason: denied.reason(),
                })
                .inc();
        })
    }

    /// `router` with every route requiring `scope`: 401 with a
    /// `WWW-Authenticate` challenge, or 403, before the body is read.
    pub fn protect<S: Clone + Send + Sync + 'static>(
        &self,
        router: axum::Router<S>,
        scope: Scope,
    ) -> axum::Router<S> {
        let guard = self.clone();
        router.route_layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                let guard = guard.clone();
                async move {
                    use axum::response::IntoResponse;
                    match guard.check(request.headers(), scope) {
                        Ok(()) => next.run(request).await,
                        Err(denied @ Denied::Unauthenticated) => (
                            http::StatusCode::UNAUTHORIZED,
                            [(http::header::WWW_AUTHENTICATE, "Bearer realm=\"sluice\"")],
                            denied.message(),
                        )
                            .into_response(),
                        Err(denied) => {
                            (http::StatusCode::FORBIDDEN, denied.message()).into_response()
                        }
                    }
                }
            },
        ))
    }
}
