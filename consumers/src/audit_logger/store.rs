//! The archive on an object store: where it is (`AUDIT_URL`, or `S3_BUCKET` with the
//! AWS settings), object names (CONVENTIONS: first and last offset in the name, Hive
//! layout by the records' UTC hour), uploads with `PutMode::Create`, and the last
//! archived offset of a partition, read from the names.

use crate::config::ConfigError;
use crate::sink::SinkError;
use agentbus_client::Topic;
use futures_util::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Where the archive goes.
#[derive(Debug, Clone, Default)]
pub struct ArchiveSettings {
    /// `AUDIT_URL`: `file:///path` (or a plain path) for a local directory.
    pub url: Option<String>,
    /// `S3_BUCKET`: archive to S3 (or an S3-compatible store) instead.
    pub bucket: Option<String>,
    /// `S3_PREFIX` (`events/`): put before every object name.
    pub prefix: Option<String>,
    /// `AWS_REGION` (`us-east-1`).
    pub region: Option<String>,
    /// `S3_ENDPOINT`: an S3-compatible server (MinIO and the like), path-style.
    pub endpoint: Option<String>,
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key_id: Option<String>,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: Option<String>,
    /// `AWS_SESSION_TOKEN`.
    pub session_token: Option<String>,
}

/// The default local archive, for development.
pub const DEFAULT_URL: &str = "file://./audit";

fn set(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl ArchiveSettings {
    /// The archive and where it is (for logs), or the setting that is wrong.
    pub fn open(&self) -> Result<(Archive, String), ConfigError> {
        let mut prefix = set(&self.prefix)
            .unwrap_or("events/")
            .trim_start_matches('/')
            .to_string();
        if !prefix.is_empty() && !prefix.ends_with('/') {
            prefix.push('/');
        }
        if let Some(bucket) = set(&self.bucket) {
            let key = set(&self.access_key_id).ok_or_else(|| {
                ConfigError::new("AWS_ACCESS_KEY_ID", "is required with S3_BUCKET")
            })?;
            let secret = set(&self.secret_access_key).ok_or_else(|| {
                ConfigError::new("AWS_SECRET_ACCESS_KEY", "is required with S3_BUCKET")
            })?;
            // A short retry inside the client: the runtime retries a failed upload with
            // its own backoff, paused and with `/ready` 503. The client's default (10
            // retries, backoff up to 15 s) held one call through a whole outage, so the
            // outage never showed.
            let retry = object_store::RetryConfig {
                max_retries: 3,
                retry_timeout: std::time::Duration::from_secs(3),
                backoff: object_store::BackoffConfig::default(),
            };
            let mut b = object_store::aws::AmazonS3Builder::new()
                .with_retry(retry)
                .with_bucket_name(bucket)
                .with_region(set(&self.region).unwrap_or("us-east-1"))
                .with_access_key_id(key)
                .with_secret_access_key(secret);
            if let Some(token) = set(&self.session_token) {
                b = b.with_token(token);
            }
            if let Some(endpoint) = set(&self.endpoint) {
                if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                    return Err(ConfigError::new(
                        "S3_ENDPOINT",
                        "must start with http:// or https://",
                    ));
                }
                b = b
                    .with_endpoint(endpoint)
                    .with_allow_http(endpoint.starts_with("http://"))
                    .with_virtual_hosted_style_request(false);
            }
            let store = b
                .build()
                .map_err(|e| ConfigError::new("S3_BUCKET", e.to_string()))?;
            let place = format!("s3://{bucket}/{prefix}");
            return Ok((
                Archive {
                    store: Arc::new(store),
                    prefix,
                },
                place,
            ));
        }
        let url = set(&self.url).unwrap_or(DEFAULT_URL);
        let dir = url.strip_prefix("file://").unwrap_or(url);
        if dir.is_empty() || url.contains("://") && !url.starts_with("file://") {
            return Err(ConfigError::new(
                "AUDIT_URL",
                format!("{url:?} is not file:///path (or set S3_BUCKET for S3)"),
            ));
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| ConfigError::new("AUDIT_URL", format!("cannot create {dir}: {e}")))?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| ConfigError::new("AUDIT_URL", e.to_string()))?;
        let place = format!("file://{dir}/{prefix}");
        Ok((
            Archive {
                store: Arc::new(store),
                prefix,
            },
            place,
        ))
    }

    /// The setting a store error is most likely about (for start-up messages).
    pub fn setting_for(&self, error: &str) -> &'static str {
        if set(&self.bucket).is_none() {
            "AUDIT_URL"
        } else if ["InvalidAccessKeyId", "NotSignedUp", "AccessDenied"]
            .iter()
            .any(|code| error.contains(code))
        {
            "AWS_ACCESS_KEY_ID"
        } else if error.contains("SignatureDoesNotMatch") {
            "AWS_SECRET_ACCESS_KEY"
        } else if error.contains("NoSuchBucket") {
            "S3_BUCKET"
        } else if set(&self.endpoint).is_some() {
            "S3_ENDPOINT"
        } else {
            "S3_BUCKET"
        }
    }
}

/// The name of a file of `topic`/`partition` holding `first..=last`, written in the
/// UTC hour starting at `hour_ms`.
pub fn object_name(
    prefix: &str,
    topic: Topic,
    partition: i32,
    first: i64,
    last: i64,
    hour_ms: i64,
) -> String {
    let t = chrono::DateTime::from_timestamp_millis(hour_ms).unwrap_or_default();
    let name = topic.name();
    format!(
        "{prefix}topics/{name}/date={}/hour={}/partition={partition}/{name}+{partition}+{first:020}+{last:020}.parquet",
        t.format("%Y-%m-%d"),
        t.format("%H")
    )
}

/// `(partition, first, last)` of an archive object's name.
pub fn parse_name(location: &str) -> Option<(i32, i64, i64)> {
    let file = location.rsplit('/').next()?.strip_suffix(".parquet")?;
    let mut parts = file.rsplitn(4, '+');
    let last = parts.next()?.parse().ok()?;
    let first = parts.next()?.parse().ok()?;
    let partition = parts.next()?.parse().ok()?;
    Some((partition, first, last))
}

fn marker_name(prefix: &str, topic: &str, partition: i32) -> String {
    format!("{prefix}markers/{topic}/{partition}.json")
}

/// Why the store failed: a missing bucket, a refused login or an unwritable directory
/// need a person; the rest is an outage to wait out.
pub fn classify(e: object_store::Error) -> SinkError {
    use object_store::Error;
    let message = e.to_string();
    match e {
        Error::PermissionDenied { .. } | Error::Unauthenticated { .. } => SinkError::Fatal(message),
        _ if message.contains("NoSuchBucket")
            || message.contains("InvalidAccessKeyId")
            || message.contains("SignatureDoesNotMatch") =>
        {
            SinkError::Fatal(message)
        }
        _ => SinkError::Unavailable(message),
    }
}

/// What a partition's marker says.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Marker {
    /// The partition's last archived offset (-1: none yet).
    last_offset: i64,
    /// The last archived object, or (pending) the one being uploaded.
    object: String,
    topic_id: Option<String>,
    /// Written before `object`'s upload: whether it made it is the object's own
    /// existence. Every upload has one, so the file a crash left unmarked is always
    /// found, whatever its name sorts after.
    #[serde(default)]
    pending: bool,
}

/// The archive: a store and the prefix of its names.
#[derive(Debug, Clone)]
pub struct Archive {
    pub(super) store: Arc<dyn ObjectStore>,
    pub(super) prefix: String,
}

impl Archive {
    /// Uploads a file under `name` (never over an existing object); an object of that
    /// exact name is the same file uploaded before a crash, and counts as done.
    pub async fn upload(&self, name: &str, bytes: Vec<u8>) -> Result<(), SinkError> {
        let path = Path::from(name);
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .store
            .put_opts(&path, PutPayload::from(bytes), opts)
            .await
        {
            Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => Ok(()),
            Err(e) => Err(classify(e)),
        }
    }

    /// Records the partition's last archived offset (-1: none) and its object, or
    /// (`pending`) that `object` is about to be uploaded after `last`.
    pub async fn mark(
        &self,
        topic: &str,
        partition: i32,
        last: i64,
        object: &str,
        topic_id: Option<&str>,
        pending: bool,
    ) -> Result<(), SinkError> {
        let marker = Marker {
            last_offset: last,
            object: object.to_string(),
            topic_id: topic_id.map(str::to_string),
            pending,
        };
        let body = serde_json::to_vec(&marker).map_err(|e| SinkError::Fatal(e.to_string()))?;
        self.store
            .put(
                &Path::from(marker_name(&self.prefix, topic, partition)),
                PutPayload::from(body),
            )
            .await
            .map(drop)
            .map_err(classify)
    }

    async fn marker(&self, topic: &str, partition: i32) -> Result<Option<Marker>, SinkError> {
        match self
            .store
            .get(&Path::from(marker_name(&self.prefix, topic, partition)))
            .await
        {
            Ok(got) => {
                let bytes = got.bytes().await.map_err(classify)?;
                Ok(serde_json::from_slice(&bytes).ok())
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(classify(e)),
        }
    }

    /// The last archived offset and the topic id of each of `partitions` of `topic`
    /// that has any. A marker says it, asking the store whether a pending upload made
    /// it; a partition without a marker (the markers deleted, say) is found from the
    /// names alone.
    pub async fn last_archived(
        &self,
        topic: &str,
        partitions: &[i32],
    ) -> Result<BTreeMap<i32, (i64, Option<String>)>, SinkError> {
        let mut out: BTreeMap<i32, (i64, Option<String>)> = BTreeMap::new();
        let mut unmarked = Vec::new();
        for p in partitions {
            let Some(m) = self.marker(topic, *p).await? else {
                unmarked.push(*p);
                continue;
            };
            let mut last = m.last_offset;
            if m.pending {
                match self.store.head(&Path::from(m.object.as_str())).await {
                    Ok(_) => {
                        if let Some((_, _, uploaded)) = parse_name(&m.object) {
                            last = last.max(uploaded);
                        }
                    }
                    Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(classify(e)),
                }
            }
            if last >= 0 {
                out.insert(*p, (last, m.topic_id));
            }
        }
        if unmarked.is_empty() {
            return Ok(out);
        }
        let dir = Path::from(format!("{}topics/{topic}", self.prefix));
        let objects: Vec<object_store::ObjectMeta> = self
            .store
            .list(Some(&dir))
            .try_collect()
            .await
            .map_err(classify)?;
        for o in objects {
            let Some((p, _, last)) = parse_name(o.location.as_ref()) else {
                continue;
            };
            if unmarked.contains(&p) {
                let entry = out.entry(p).or_insert((last, None));
                entry.0 = entry.0.max(last);
            }
        }
        Ok(out)
    }

    /// Writes and deletes a probe object: the store is there and writable.
    pub async fn probe(&self) -> Result<(), SinkError> {
        let path = Path::from(format!(
            "{}markers/.probe-{}",
            self.prefix,
            std::process::id()
        ));
        self.store
            .put(&path, PutPayload::from_static(b"agentbus"))
            .await
            .map_err(classify)?;
        self.store.delete(&path).await.map_err(classify)
    }

    /// Whether the store answers (one HEAD: an absent object is an answer).
    pub async fn reachable(&self) -> Result<(), SinkError> {
        let path = Path::from(format!("{}markers/.reachable", self.prefix));
        match self.store.head(&path).await {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(classify(e)),
        }
    }

    /// Every archive object under the prefix (for `agentbus audit ls`), by name.
    pub async fn list(
        &self,
        topic: Option<&str>,
    ) -> Result<Vec<object_store::ObjectMeta>, SinkError> {
        let dir = match topic {
            Some(t) => Path::from(format!("{}topics/{t}", self.prefix)),
            None => Path::from(format!("{}topics", self.prefix)),
        };
        let mut objects: Vec<object_store::ObjectMeta> = self
            .store
            .list(Some(&dir))
            .try_collect()
            .await
            .map_err(classify)?;
        objects.retain(|o| parse_name(o.location.as_ref()).is_some());
        objects.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(objects)
    }

    /// The bytes of an object.
    pub async fn read(&self, location: &Path) -> Result<bytes::Bytes, SinkError> {
        self.store
            .get(location)
            .await
            .map_err(classify)?
            .bytes()
            .await
            .map_err(classify)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_error_names_the_setting_it_is_about() {
        let s3 = ArchiveSettings {
            bucket: Some("audit".into()),
            ..ArchiveSettings::default()
        };
        // The error codes S3 answers with (AWS and MinIO alike).
        for (error, setting) in [
            ("<Code>NoSuchBucket</Code>", "S3_BUCKET"),
            ("<Code>InvalidAccessKeyId</Code>", "AWS_ACCESS_KEY_ID"),
            ("<Code>NotSignedUp</Code>", "AWS_ACCESS_KEY_ID"),
            ("<Code>AccessDenied</Code>", "AWS_ACCESS_KEY_ID"),
            (
                "<Code>SignatureDoesNotMatch</Code>",
                "AWS_SECRET_ACCESS_KEY",
            ),
            ("connection refused", "S3_BUCKET"),
        ] {
            assert_eq!(s3.setting_for(error), setting, "{error}");
        }
        let minio = ArchiveSettings {
            endpoint: Some("http://127.0.0.1:9000".into()),
            ..s3
        };
        assert_eq!(minio.setting_for("connection refused"), "S3_ENDPOINT");
        assert_eq!(
            ArchiveSettings::default().setting_for("permission denied"),
            "AUDIT_URL"
        );
    }

    #[test]
    fn names_follow_the_convention_and_parse_back() {
        let hour = chrono::DateTime::parse_from_rfc3339("2025-10-20T18:00:00Z")
            .unwrap()
            .timestamp_millis();
        let n = object_name("events/", Topic::AgentActions, 3, 42, 1041, hour);
        assert_eq!(
            n,
            "events/topics/agent-actions/date=2025-10-20/hour=18/partition=3/agent-actions+3+00000000000000000042+00000000000000001041.parquet"
        );
        assert_eq!(parse_name(&n), Some((3, 42, 1041)));
        assert_eq!(parse_name("events/markers/agent-actions/3.json"), None);
    }

    #[tokio::test]
    async fn an_upload_a_crash_left_unmarked_is_found_whatever_its_name_sorts_after() {
        let archive = Archive {
            store: Arc::new(object_store::memory::InMemory::new()),
            prefix: "events/".into(),
        };
        let t = Topic::AgentActions;
        let hour = |h: i64| h * 3_600_000;
        let nothing = archive.last_archived(t.name(), &[0, 1]).await.unwrap();
        assert!(nothing.is_empty());
        let a = object_name("events/", t, 0, 0, 9, hour(11));
        archive.mark(t.name(), 0, -1, &a, None, true).await.unwrap();
        let pending = archive.last_archived(t.name(), &[0]).await.unwrap();
        assert!(pending.is_empty(), "an intent is not an archive");
        archive.upload(&a, vec![1]).await.unwrap();
        archive.mark(t.name(), 0, 9, &a, None, false).await.unwrap();
        // The next file's records are stamped an hour earlier: its name sorts before the
        // marked one. It is uploaded, and the process dies before its marker.
        let b = object_name("events/", t, 0, 10, 19, hour(10));
        assert!(b < a);
        archive.mark(t.name(), 0, 9, &b, None, true).await.unwrap();
        let before = archive.last_archived(t.name(), &[0]).await.unwrap();
        assert_eq!(before.get(&0), Some(&(9, None)));
        archive.upload(&b, vec![2]).await.unwrap();
        let after = archive.last_archived(t.name(), &[0, 1]).await.unwrap();
        assert_eq!(after, BTreeMap::from([(0, (19, None))]));
    }

    #[test]
    fn settings_name_what_is_wrong() {
        let s = ArchiveSettings {
            bucket: Some("b".into()),
            ..Default::default()
        };
        assert_eq!(s.open().unwrap_err().setting, "AWS_ACCESS_KEY_ID");
        let s = ArchiveSettings {
            url: Some("ftp://x".into()),
            ..Default::default()
        };
        assert_eq!(s.open().unwrap_err().setting, "AUDIT_URL");
        let s = ArchiveSettings {
            bucket: Some("b".into()),
            access_key_id: Some("k".into()),
            secret_access_key: Some("s".into()),
            endpoint: Some("localhost:9000".into()),
            ..Default::default()
        };
        assert_eq!(s.open().unwrap_err().setting, "S3_ENDPOINT");
    }
}
