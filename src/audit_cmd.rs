//! `agentbus audit ls|cat`: the audit-logger's archive, read without Spark; and the
//! archive's settings, shared with `agentbus consume audit-logger`.

use agentbus_consumers::audit_logger::read::rows;
use agentbus_consumers::audit_logger::store::parse_name;
use agentbus_consumers::audit_logger::{Archive, ArchiveSettings};
use agentbus_consumers::config::ConfigError;
use anyhow::Context;

/// Where the archive is.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ArchiveArgs {
    /// A local directory archive (`file:///path`), the default for development; ignored
    /// when S3_BUCKET is set.
    #[arg(long, env = "AUDIT_URL")]
    pub(crate) audit_url: Option<String>,
    /// Archive to this S3 bucket (or an S3-compatible store's, with S3_ENDPOINT).
    #[arg(long, env = "S3_BUCKET")]
    pub(crate) s3_bucket: Option<String>,
    /// Before every object name.
    #[arg(long, env = "S3_PREFIX", default_value = "events/")]
    s3_prefix: String,
    /// The bucket's region.
    #[arg(long, env = "AWS_REGION")]
    aws_region: Option<String>,
    /// An S3-compatible server (MinIO and the like), addressed path-style.
    #[arg(long, env = "S3_ENDPOINT")]
    s3_endpoint: Option<String>,
    /// Access key (from the environment).
    #[arg(skip = std::env::var("AWS_ACCESS_KEY_ID").ok())]
    access_key_id: Option<String>,
    /// Secret key (only from the environment).
    #[arg(skip = std::env::var("AWS_SECRET_ACCESS_KEY").ok())]
    secret_access_key: Option<String>,
    /// Session token (only from the environment).
    #[arg(skip = std::env::var("AWS_SESSION_TOKEN").ok())]
    session_token: Option<String>,
}

impl ArchiveArgs {
    pub(crate) fn settings(&self) -> ArchiveSettings {
        ArchiveSettings {
            url: self.audit_url.clone(),
            bucket: self.s3_bucket.clone(),
            prefix: Some(self.s3_prefix.clone()),
            region: self.aws_region.clone(),
            endpoint: self.s3_endpoint.clone(),
            access_key_id: self.access_key_id.clone(),
            secret_access_key: self.secret_access_key.clone(),
            session_token: self.session_token.clone(),
        }
    }

    pub(crate) fn open(&self) -> Result<(Archive, String), ConfigError> {
        self.settings().open()
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct AuditArgs {
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, clap::Subcommand)]
enum What {
    /// List the archived files: name, size, first and last offset.
    Ls(Select),
    /// Print the archived records as JSON lines.
    Cat(Select),
}

#[derive(Debug, clap::Args)]
struct Select {
    /// Only this topic.
    #[arg(long)]
    topic: Option<String>,
    /// Only this partition.
    #[arg(long)]
    partition: Option<i32>,
    /// Only records at or after this time (RFC 3339), by record timestamp.
    #[arg(long)]
    from: Option<String>,
    /// Only records before this time (RFC 3339).
    #[arg(long)]
    to: Option<String>,
    #[command(flatten)]
    archive: ArchiveArgs,
}

fn time(flag: &str, v: Option<&String>) -> anyhow::Result<Option<i64>> {
    v.map(|s| {
        chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| t.timestamp_millis())
            .with_context(|| format!("{flag}: {s:?} is not an RFC 3339 time"))
    })
    .transpose()
}

pub(crate) async fn run(args: AuditArgs) -> anyhow::Result<()> {
    let (sel, cat) = match args.what {
        What::Ls(s) => (s, false),
        What::Cat(s) => (s, true),
    };
    let (from, to) = (
        time("--from", sel.from.as_ref())?,
        time("--to", sel.to.as_ref())?,
    );
    let (archive, place) = sel.archive.open()?;
    let objects = archive
        .list(sel.topic.as_deref())
        .await
        .with_context(|| format!("cannot list {place}"))?;
    for o in objects {
        let Some((partition, first, last)) = parse_name(o.location.as_ref()) else {
            continue;
        };
        if sel.partition.is_some_and(|p| p != partition) {
            continue;
        }
        if !cat {
            crate::emit(&format!("{}\t{}\t{first}..{last}\n", o.location, o.size))?;
            continue;
        }
        let bytes = archive.read(&o.location).await?;
        let mut text = String::new();
        for row in rows(bytes).with_context(|| format!("{} is not readable Parquet", o.location))? {
            let ts = row.timestamp.unwrap_or(0);
            if from.is_some_and(|f| ts < f) || to.is_some_and(|t| ts >= t) {
                continue;
            }
            text.push_str(&row.json().to_string());
            text.push('\n');
        }
        crate::emit(&text)?;
    }
    Ok(())
}
