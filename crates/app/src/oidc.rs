//! Sign-in with an organisation's OpenID Connect provider, such as NHS CIS2: the
//! authorisation code flow with PKCE, the client authenticating to the token endpoint with
//! a JWT signed by its own private key (`private_key_jwt`, RFC 7523), and the ID token
//! checked against the provider's published keys. The provider vouches for who the person
//! is; what they may do in Kith still comes from their Kith roles, matched by email.
//!
//! What sign-in must remember between leaving for the provider and coming back (state,
//! nonce, PKCE verifier, where to go next) travels in a short-lived cookie sealed with the
//! keyring, so any instance can finish a sign-in another began.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{self, KeyPair, RsaKeyPair, RsaPublicKeyComponents};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::RwLock;

/// How long a person has to sign in at the provider and come back.
pub const PENDING_SECONDS: i64 = 600;
/// Clock difference allowed between Kith and the provider.
const LEEWAY_SECONDS: i64 = 60;

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("{0}")]
    Config(String),
    #[error("the sign-in service could not be reached: {0}")]
    Unreachable(String),
    #[error("the sign-in service answered in a way Kith cannot use: {0}")]
    Protocol(String),
    #[error("the sign-in did not check out: {0}")]
    Rejected(String),
}

/// An RSA signature algorithm for JWTs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwsAlg {
    Rs256,
    Rs384,
    Rs512,
}

impl JwsAlg {
    pub fn parse(name: &str) -> Option<JwsAlg> {
        match name {
            "RS256" => Some(JwsAlg::Rs256),
            "RS384" => Some(JwsAlg::Rs384),
            "RS512" => Some(JwsAlg::Rs512),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            JwsAlg::Rs256 => "RS256",
            JwsAlg::Rs384 => "RS384",
            JwsAlg::Rs512 => "RS512",
        }
    }

    fn signing(self) -> &'static dyn signature::RsaEncoding {
        match self {
            JwsAlg::Rs256 => &signature::RSA_PKCS1_SHA256,
            JwsAlg::Rs384 => &signature::RSA_PKCS1_SHA384,
            JwsAlg::Rs512 => &signature::RSA_PKCS1_SHA512,
        }
    }

    fn verification(self) -> &'static signature::RsaParameters {
        match self {
            JwsAlg::Rs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            JwsAlg::Rs384 => &signature::RSA_PKCS1_2048_8192_SHA384,
            JwsAlg::Rs512 => &signature::RSA_PKCS1_2048_8192_SHA512,
        }
    }
}

/// The private key Kith signs its client assertions with, and the id the provider knows
/// its public half by.
#[derive(Clone)]
pub struct ClientKey {
    key: Arc<RsaKeyPair>,
    pub kid: String,
    pub alg: JwsAlg,
}

impl std::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientKey").field("kid", &self.kid).field("alg", &self.alg).finish_non_exhaustive()
    }
}

impl ClientKey {
    /// Reads an RSA private key in PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), as
    /// `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:4096` writes.
    pub fn from_pem(pem: &str, kid: &str, alg: JwsAlg) -> Result<ClientKey, OidcError> {
        let body: String = pem
            .lines()
            .skip_while(|l| !l.starts_with("-----BEGIN PRIVATE KEY-----"))
            .skip(1)
            .take_while(|l| !l.starts_with("-----END"))
            .collect();
        if body.is_empty() {
            return Err(OidcError::Config(
                "the OIDC key file holds no `-----BEGIN PRIVATE KEY-----` block (PKCS#8); convert it with `openssl pkcs8 -topk8 -nocrypt`".into(),
            ));
        }
        let der = base64::engine::general_purpose::STANDARD
            .decode(body.trim())
            .map_err(|_| OidcError::Config("the OIDC key file is not valid PEM".into()))?;
        let key = RsaKeyPair::from_pkcs8(&der)
            .map_err(|e| OidcError::Config(format!("the OIDC key is not a usable RSA private key: {e}")))?;
        Ok(ClientKey { key: Arc::new(key), kid: kid.to_owned(), alg })
    }

    /// The public half as a JWK, for registering with the provider (or publishing).
    pub fn public_jwk(&self) -> Value {
        let components: RsaPublicKeyComponents<Vec<u8>> = self.key.public_key().into();
        serde_json::json!({
            "kty": "RSA",
            "use": "sig",
            "alg": self.alg.name(),
            "kid": self.kid,
            "n": URL_SAFE_NO_PAD.encode(&components.n),
            "e": URL_SAFE_NO_PAD.encode(&components.e),
        })
    }

    /// A compact JWS of `claims`.
    pub fn sign(&self, claims: &Value) -> Result<String, OidcError> {
        let header = serde_json::json!({ "alg": self.alg.name(), "typ": "JWT", "kid": self.kid });
        let input =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let mut sig = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(self.alg.signing(), &ring::rand::SystemRandom::new(), input.as_bytes(), &mut sig)
            .map_err(|_| OidcError::Config("the client assertion could not be signed".into()))?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }
}

/// How Kith is registered with a provider.
#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// The provider's issuer URL; its discovery document is at
    /// `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: String,
    /// Where the provider sends people back: `https://kith.example.org/signin/oidc/callback`.
    pub redirect_url: String,
    pub key: ClientKey,
    /// The button says "Sign in with {label}".
    pub label: String,
    pub scopes: String,
}

#[derive(Debug, Clone, Deserialize)]
struct Metadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

#[derive(Debug, Clone, Deserialize)]
struct Jwk {
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
}

#[derive(Debug, Clone)]
struct Provider {
    metadata: Metadata,
    keys: Vec<Jwk>,
}

/// What a sign-in in progress remembers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub state: String,
    pub nonce: String,
    pub verifier: String,
    pub next: String,
    /// Seconds since 1970 after which the sign-in must start again.
    pub expires: i64,
}

/// Who the provider says signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub subject: String,
    pub email: String,
}

#[derive(Debug)]
pub struct Oidc {
    pub config: OidcConfig,
    http: reqwest::Client,
    provider: RwLock<Option<Provider>>,
}

fn loopback(url: &str) -> bool {
    ["http://127.0.0.1", "http://localhost", "http://[::1]"]
        .iter()
        .any(|p| url.strip_prefix(p).is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/'])))
}

fn secure_url(url: &str) -> bool {
    url.starts_with("https://") || loopback(url)
}

fn b64_json(part: &str) -> Result<Value, OidcError> {
    let bytes =
        URL_SAFE_NO_PAD.decode(part).map_err(|_| OidcError::Protocol("the ID token is not base64url".into()))?;
    serde_json::from_slice(&bytes).map_err(|_| OidcError::Protocol("the ID token is not JSON".into()))
}

impl Oidc {
    pub fn new(config: OidcConfig) -> Result<Oidc, OidcError> {
        for (what, url) in [("issuer", &config.issuer), ("redirect URL", &config.redirect_url)] {
            if !secure_url(url) {
                return Err(OidcError::Config(format!(
                    "the OIDC {what} must use https:// (or be on this machine): {url}"
                )));
            }
        }
        // rustls with ring; installing twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| OidcError::Config(format!("cannot set up HTTPS: {e}")))?;
        Ok(Oidc { config, http, provider: RwLock::new(None) })
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, OidcError> {
        if !secure_url(url) {
            return Err(OidcError::Protocol(format!("{url} is not https")));
        }
        let response = self.http.get(url).send().await.map_err(|e| OidcError::Unreachable(e.to_string()))?;
        if !response.status().is_success() {
            return Err(OidcError::Unreachable(format!("{url} answered {}", response.status())));
        }
        response.json().await.map_err(|e| OidcError::Protocol(format!("{url}: {e}")))
    }

    /// The provider's endpoints and keys, fetched once and again when a token names a key
    /// Kith has not seen (the provider has rotated its keys).
    async fn provider(&self, refresh: bool) -> Result<Provider, OidcError> {
        if !refresh && let Some(p) = self.provider.read().await.clone() {
            return Ok(p);
        }
        let discovery = format!("{}/.well-known/openid-configuration", self.config.issuer.trim_end_matches('/'));
        let metadata: Metadata = self.get_json(&discovery).await?;
        if metadata.issuer.trim_end_matches('/') != self.config.issuer.trim_end_matches('/') {
            return Err(OidcError::Protocol(format!(
                "the discovery document names another issuer, {}",
                metadata.issuer
            )));
        }
        #[derive(Deserialize)]
        struct Jwks {
            keys: Vec<Jwk>,
        }
        let jwks: Jwks = self.get_json(&metadata.jwks_uri).await?;
        let provider = Provider { metadata, keys: jwks.keys };
        *self.provider.write().await = Some(provider.clone());
        Ok(provider)
    }

    /// Where to send the person to sign in, and what to remember until they return.
    pub async fn begin(&self, next: &str, now: i64) -> Result<(String, Pending), OidcError> {
        let provider = self.provider(false).await?;
        let pending = Pending {
            state: kith_crypto::token::new_token().0,
            nonce: kith_crypto::token::new_token().0,
            verifier: kith_crypto::token::new_token().0,
            next: next.to_owned(),
            expires: now + PENDING_SECONDS,
        };
        let challenge =
            URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, pending.verifier.as_bytes()));
        let query = serde_urlencoded::to_string([
            ("response_type", "code"),
            ("client_id", self.config.client_id.as_str()),
            ("redirect_uri", self.config.redirect_url.as_str()),
            ("scope", self.config.scopes.as_str()),
            ("state", pending.state.as_str()),
            ("nonce", pending.nonce.as_str()),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ])
        .map_err(|e| OidcError::Config(e.to_string()))?;
        let endpoint = &provider.metadata.authorization_endpoint;
        let sep = if endpoint.contains('?') { '&' } else { '?' };
        Ok((format!("{endpoint}{sep}{query}"), pending))
    }

    /// Exchanges the code for an ID token, checks it, and says who signed in.
    pub async fn complete(&self, code: &str, state: &str, pending: &Pending, now: i64) -> Result<Identity, OidcError> {
        if now > pending.expires {
            return Err(OidcError::Rejected("the sign-in took too long; start again".into()));
        }
        if !kith_crypto::constant_time_eq(state.as_bytes(), pending.state.as_bytes()) {
            return Err(OidcError::Rejected("the reply does not match a sign-in started here".into()));
        }
        let provider = self.provider(false).await?;
        let token_endpoint = provider.metadata.token_endpoint.clone();
        let assertion = self.config.key.sign(&serde_json::json!({
            "iss": self.config.client_id,
            "sub": self.config.client_id,
            "aud": token_endpoint,
            "jti": kith_crypto::token::new_token().0,
            "iat": now,
            "exp": now + 300,
        }))?;
        let form = serde_urlencoded::to_string([
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.config.redirect_url.as_str()),
            ("client_id", self.config.client_id.as_str()),
            ("code_verifier", pending.verifier.as_str()),
            ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
            ("client_assertion", assertion.as_str()),
        ])
        .map_err(|e| OidcError::Config(e.to_string()))?;
        if !secure_url(&token_endpoint) {
            return Err(OidcError::Protocol(format!("{token_endpoint} is not https")));
        }
        let response = self
            .http
            .post(&token_endpoint)
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(reqwest::header::ACCEPT, "application/json")
            .body(form)
            .send()
            .await
            .map_err(|e| OidcError::Unreachable(e.to_string()))?;
        let status = response.status();
        let body: Value = response.json().await.map_err(|e| OidcError::Protocol(e.to_string()))?;
        if !status.is_success() {
            let error = body["error_description"].as_str().or(body["error"].as_str()).unwrap_or("no reason given");
            return Err(OidcError::Rejected(format!("the token request was refused ({status}): {error}")));
        }
        let id_token = body["id_token"]
            .as_str()
            .ok_or_else(|| OidcError::Protocol("the token response has no id_token".into()))?;
        let claims = self.verify(id_token).await?;
        self.check_claims(&claims, &provider.metadata.issuer, &pending.nonce, now)
    }

    /// Checks an ID token's signature against the provider's keys and returns its claims.
    async fn verify(&self, token: &str) -> Result<Value, OidcError> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(OidcError::Protocol("the ID token is not a signed JWT".into()));
        };
        let header = b64_json(h)?;
        let alg = header["alg"].as_str().and_then(JwsAlg::parse).ok_or_else(|| {
            OidcError::Rejected(format!("the ID token is signed with {}, which Kith does not accept", header["alg"]))
        })?;
        let kid = header["kid"].as_str();
        let signature = URL_SAFE_NO_PAD.decode(s).map_err(|_| OidcError::Protocol("bad signature encoding".into()))?;
        let message = format!("{h}.{p}");
        for refresh in [false, true] {
            let provider = self.provider(refresh).await?;
            let candidates: Vec<&Jwk> =
                provider.keys.iter().filter(|k| k.kty == "RSA" && (kid.is_none() || k.kid.as_deref() == kid)).collect();
            if candidates.is_empty() {
                continue;
            }
            for key in candidates {
                let (Some(n), Some(e)) = (&key.n, &key.e) else { continue };
                let (Ok(n), Ok(e)) = (URL_SAFE_NO_PAD.decode(n), URL_SAFE_NO_PAD.decode(e)) else { continue };
                let public = RsaPublicKeyComponents { n, e };
                if public.verify(alg.verification(), message.as_bytes(), &signature).is_ok() {
                    return b64_json(p);
                }
            }
            return Err(OidcError::Rejected("the ID token's signature does not match the provider's key".into()));
        }
        Err(OidcError::Rejected("the ID token is signed with a key the provider does not publish".into()))
    }

    fn check_claims(&self, claims: &Value, issuer: &str, nonce: &str, now: i64) -> Result<Identity, OidcError> {
        let reject = |why: &str| Err(OidcError::Rejected(why.to_owned()));
        if claims["iss"].as_str() != Some(issuer) {
            return reject("the ID token is from another issuer");
        }
        let client = self.config.client_id.as_str();
        let audience_ok = match &claims["aud"] {
            Value::String(a) => a == client,
            Value::Array(list) => {
                list.iter().any(|a| a.as_str() == Some(client))
                    && (list.len() == 1 || claims["azp"].as_str() == Some(client))
            }
            _ => false,
        };
        if !audience_ok {
            return reject("the ID token is for another application");
        }
        match claims["exp"].as_i64() {
            Some(exp) if exp + LEEWAY_SECONDS >= now => {}
            _ => return reject("the ID token has expired"),
        }
        if claims["iat"].as_i64().is_some_and(|iat| iat > now + LEEWAY_SECONDS) {
            return reject("the ID token is dated in the future");
        }
        if !kith_crypto::constant_time_eq(claims["nonce"].as_str().unwrap_or("").as_bytes(), nonce.as_bytes()) {
            return reject("the ID token was not issued for this sign-in");
        }
        let subject = claims["sub"].as_str().unwrap_or("").to_owned();
        if subject.is_empty() {
            return reject("the ID token names nobody");
        }
        // Only an address the provider vouches for: roles are matched by email, so an
        // unverified (or unstated) one could take over someone else's account.
        if claims["email_verified"].as_bool() != Some(true) {
            return reject("the provider has not verified this person's email address");
        }
        let Some(email) = claims["email"].as_str().filter(|e| e.contains('@')) else {
            return reject("the provider did not say this person's email address; ask for the email scope");
        };
        Ok(Identity { subject, email: email.to_owned() })
    }
}
