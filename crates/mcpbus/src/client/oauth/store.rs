//! Where the OAuth client keeps what it obtained: the client registration and the tokens for an
//! MCP server, bound to the issuer of the authorization server that issued them.
//!
//! [`MemoryTokenStore`] (the default) forgets everything with the process; [`FileTokenStore`]
//! keeps one JSON file readable by its owner only (mode 0600 on Unix), so that a command line
//! tool logs in once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::OAuthError;
use crate::util::lock;

/// A client registration with an authorization server (dynamic registration's answer).
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RegisteredClient {
    /// The client id.
    pub client_id: String,
    /// The client secret, for a confidential client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// How the client authenticates at the token endpoint, when the server said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_method: Option<String>,
    /// When the secret expires (seconds since the Unix epoch; absent or 0: never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_expires_at: Option<u64>,
}

impl std::fmt::Debug for RegisteredClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisteredClient")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "…"))
            .field(
                "token_endpoint_auth_method",
                &self.token_endpoint_auth_method,
            )
            .field("client_secret_expires_at", &self.client_secret_expires_at)
            .finish()
    }
}

/// Tokens from a token endpoint.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Tokens {
    /// The access token sent to the MCP server.
    pub access_token: String,
    /// Its type (`Bearer`).
    pub token_type: String,
    /// The refresh token, if the server issued one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// When the access token expires (seconds since the Unix epoch), if the server said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// The scopes granted: the server's `scope`, or those requested when it did not say.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("token_type", &self.token_type)
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "…"))
            .field("expires_at", &self.expires_at)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

impl Tokens {
    /// Whether the access token has expired at `now` (seconds since the Unix epoch), or will
    /// within 30 s.
    pub fn expired_at(&self, now: u64) -> bool {
        self.expires_at
            .is_some_and(|at| at <= now.saturating_add(30))
    }
}

/// What is kept for one MCP server.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StoredCredentials {
    /// The issuer of the authorization server the registration and tokens belong to; when the
    /// server's metadata names another one, both are dropped (they are never sent elsewhere).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// The dynamic registration (pre-registered clients come from the configuration, client
    /// metadata document URLs need none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<RegisteredClient>,
    /// The current tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<Tokens>,
    /// The DPoP key DPoP-bound tokens are bound to (a PKCS#8 document, base64url).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_key: Option<String>,
}

impl std::fmt::Debug for StoredCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredCredentials")
            .field("issuer", &self.issuer)
            .field("client", &self.client)
            .field("tokens", &self.tokens)
            .field("dpop_key", &self.dpop_key.as_ref().map(|_| "…"))
            .finish()
    }
}

/// Keeps [`StoredCredentials`] per MCP server (the key is the server's URL unless configured
/// otherwise). Implementations must be safe to call concurrently.
pub trait TokenStore: Send + Sync + 'static {
    /// What is stored under `key`, if anything.
    fn load<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredCredentials>, OAuthError>>;

    /// Replaces what is stored under `key`.
    fn save<'a>(
        &'a self,
        key: &'a str,
        credentials: &'a StoredCredentials,
    ) -> BoxFuture<'a, Result<(), OAuthError>>;
}

/// A [`TokenStore`] in memory: nothing outlives the process.
#[derive(Debug, Default, Clone)]
pub struct MemoryTokenStore {
    entries: Arc<Mutex<BTreeMap<String, StoredCredentials>>>,
}

impl MemoryTokenStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl TokenStore for MemoryTokenStore {
    fn load<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredCredentials>, OAuthError>> {
        let found = lock(&self.entries).get(key).cloned();
        Box::pin(async move { Ok(found) })
    }

    fn save<'a>(
        &'a self,
        key: &'a str,
        credentials: &'a StoredCredentials,
    ) -> BoxFuture<'a, Result<(), OAuthError>> {
        lock(&self.entries).insert(key.to_owned(), credentials.clone());
        Box::pin(async { Ok(()) })
    }
}

/// The file of a [`FileTokenStore`].
#[derive(Debug, Default, Serialize, Deserialize)]
struct StoreFile {
    #[serde(default)]
    servers: BTreeMap<String, StoredCredentials>,
}

/// A [`TokenStore`] in one JSON file, created with mode 0600 (its directory with 0700) on Unix
/// and replaced atomically (written aside, then renamed) on every save.
///
/// Saves within a process are serialized; two processes saving at once may lose one of the
/// two updates (the next login repairs it).
#[derive(Debug, Clone)]
pub struct FileTokenStore {
    path: Arc<PathBuf>,
    /// Serializes read-modify-write cycles of this process.
    writing: Arc<tokio::sync::Mutex<()>>,
}

impl FileTokenStore {
    /// A store in the file at `path` (created at the first save).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileTokenStore {
            path: Arc::new(path.into()),
            writing: Arc::default(),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Path) -> Result<T, String> + Send + 'static,
    ) -> Result<T, OAuthError> {
        let path = self.path.clone();
        let shown = path.display().to_string();
        tokio::task::spawn_blocking(move || f(&path))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r)
            .map_err(|reason| OAuthError::Store {
                path: shown,
                reason,
            })
    }
}

impl TokenStore for FileTokenStore {
    fn load<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredCredentials>, OAuthError>> {
        let key = key.to_owned();
        Box::pin(async move {
            let mut file = self.blocking(read_file).await?;
            Ok(file.servers.remove(&key))
        })
    }

    fn save<'a>(
        &'a self,
        key: &'a str,
        credentials: &'a StoredCredentials,
    ) -> BoxFuture<'a, Result<(), OAuthError>> {
        let key = key.to_owned();
        let credentials = credentials.clone();
        Box::pin(async move {
            let _writing = self.writing.lock().await;
            self.blocking(move |path| {
                let mut file = read_file(path)?;
                file.servers.insert(key, credentials);
                write_file(path, &file)
            })
            .await
        })
    }
}

/// Reads the store's file; a missing file is an empty store, a corrupt one an error (it is
/// never overwritten silently).
fn read_file(path: &Path) -> Result<StoreFile, String> {
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(StoreFile::default()),
        Err(e) => return Err(format!("cannot read it: {e}")),
    };
    warn_if_exposed(path);
    serde_json::from_slice(&text).map_err(|e| {
        format!("it is not a token store (invalid JSON: {e}); move it away to start afresh")
    })
}

#[cfg(unix)]
fn warn_if_exposed(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            path = %path.display(),
            mode = format!("{:o}", meta.permissions().mode() & 0o777),
            "the OAuth token store is readable by other users; it should be 0600"
        );
    }
}

#[cfg(not(unix))]
fn warn_if_exposed(_path: &Path) {}

fn write_file(path: &Path, file: &StoreFile) -> Result<(), String> {
    use std::io::Write;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_private_dir(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let text = serde_json::to_vec_pretty(file).map_err(|e| e.to_string())?;
    let mut aside = path.as_os_str().to_owned();
    aside.push(format!(".{}.tmp", std::process::id()));
    let aside = PathBuf::from(aside);
    let written = open_private(&aside).and_then(|mut f| {
        f.write_all(&text)?;
        f.sync_all()
    });
    let outcome = written.and_then(|()| std::fs::rename(&aside, path));
    if let Err(e) = outcome {
        let _ = std::fs::remove_file(&aside);
        return Err(format!("cannot write it: {e}"));
    }
    Ok(())
}

#[cfg(unix)]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::create(path)
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> StoredCredentials {
        StoredCredentials {
            issuer: Some("http://127.0.0.1:1".into()),
            client: Some(RegisteredClient {
                client_id: "c".into(),
                client_secret: Some("s3cret".into()),
                ..Default::default()
            }),
            tokens: Some(Tokens {
                access_token: "at".into(),
                token_type: "Bearer".into(),
                refresh_token: Some("rt".into()),
                expires_at: Some(100),
                scopes: vec!["a".into()],
            }),
            dpop_key: Some("k3y".into()),
        }
    }

    #[tokio::test]
    async fn memory_store_round_trip() {
        let store = MemoryTokenStore::new();
        assert_eq!(store.load("k").await.unwrap(), None);
        store.save("k", &sample()).await.unwrap();
        assert_eq!(store.load("k").await.unwrap(), Some(sample()));
        assert_eq!(store.load("other").await.unwrap(), None);
    }

    #[tokio::test]
    async fn file_store_is_private_and_round_trips() {
        let dir = std::env::temp_dir().join(format!("mcpbus-oauth-{}", crate::util::random_hex(8)));
        let path = dir.join("nested").join("tokens.json");
        let store = FileTokenStore::new(&path);
        assert_eq!(store.load("k").await.unwrap(), None);
        store.save("k", &sample()).await.unwrap();
        store
            .save("k2", &StoredCredentials::default())
            .await
            .unwrap();
        let again = FileTokenStore::new(&path);
        assert_eq!(again.load("k").await.unwrap(), Some(sample()));
        assert_eq!(
            again.load("k2").await.unwrap(),
            Some(StoredCredentials::default())
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            let mode = std::fs::metadata(path.parent().unwrap())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        std::fs::write(&path, b"not json").unwrap();
        let e = store.load("k").await.unwrap_err();
        assert!(e.to_string().contains("not a token store"), "{e}");
        assert!(
            store.save("k", &sample()).await.is_err(),
            "a corrupt file is not overwritten"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let text = format!("{:?}", sample());
        assert!(!text.contains("s3cret") && !text.contains("\"at\"") && !text.contains("rt\""));
        assert!(!text.contains("k3y"), "{text}");
        assert!(text.contains("client_id: \"c\""), "{text}");
        let tokens = sample().tokens.unwrap();
        assert!(tokens.expired_at(70) && tokens.expired_at(100) && !tokens.expired_at(69));
    }
}
