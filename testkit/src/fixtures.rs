//! Throw-away PostgreSQL and Redis for tests.
//!
//! `Postgres::start()` uses `DATABASE_URL` when it is set (a running server), else starts a
//! private cluster from the installed `initdb`/`pg_ctl` on a free port; either way the test
//! gets a fresh database of its own, dropped afterwards. `Redis::start()` uses `REDIS_URL`
//! when set, else starts a private `redis-server` on a free port; either way the test gets
//! its own key prefix. When neither is possible the error names the missing binary.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Why a fixture could not start.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    #[error("`{0}` was not found (install it, or set {1} to a running server)")]
    MissingBinary(String, &'static str),
    #[error("`{command}` failed: {output}")]
    Command { command: String, output: String },
    #[error("{what} did not accept connections on port {port} within {secs} s")]
    NotReady {
        what: &'static str,
        port: u16,
        secs: u64,
    },
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

fn free_port() -> Result<u16, FixtureError> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn wait_for_port(what: &'static str, port: u16, secs: u64) -> Result<(), FixtureError> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err(FixtureError::NotReady { what, port, secs });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// A binary on PATH, or in one of `extra` directories (Debian keeps PostgreSQL's server
/// binaries under /usr/lib/postgresql/<version>/bin).
fn find_binary(name: &str, extra: &[PathBuf], env: &'static str) -> Result<PathBuf, FixtureError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(extra.iter().cloned())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| FixtureError::MissingBinary(name.to_string(), env))
}

fn postgres_bin_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path().join("bin")))
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    dirs.reverse(); // newest version first
    dirs
}

fn run(cmd: &mut Command) -> Result<String, FixtureError> {
    let out = cmd.output()?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).to_string());
    }
    Err(FixtureError::Command {
        command: format!("{cmd:?}"),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Where a fixture's server comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A running server at this URL.
    Url(String),
    /// A private server started from the installed binaries.
    Binaries,
}

/// A private PostgreSQL cluster (data directory and postmaster).
#[derive(Debug)]
struct PgCluster {
    pg_ctl: PathBuf,
    dir: PathBuf,
    run_as_postgres: bool,
}

impl PgCluster {
    fn command(&self, bin: &Path) -> Command {
        if self.run_as_postgres {
            // initdb and postgres refuse to run as root.
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(bin);
            c
        } else {
            Command::new(bin)
        }
    }

    fn start(port: u16) -> Result<Self, FixtureError> {
        let dirs = postgres_bin_dirs();
        let initdb = find_binary("initdb", &dirs, "DATABASE_URL")?;
        let pg_ctl = find_binary("pg_ctl", &dirs, "DATABASE_URL")?;
        let dir = std::env::temp_dir().join(format!("agentbus-pg-{}", uuid_like()));
        std::fs::create_dir_all(&dir)?;
        let run_as_postgres = is_root();
        if run_as_postgres {
            run(Command::new("chown").args(["-R", "postgres"]).arg(&dir))?;
        }
        let cluster = Self {
            pg_ctl,
            dir,
            run_as_postgres,
        };
        let data = cluster.dir.join("data");
        run(cluster
            .command(&initdb)
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(&data))?;
        let options = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
            cluster.dir.display()
        );
        run(cluster
            .command(&cluster.pg_ctl)
            .args(["-w", "-t", "30", "-l"])
            .arg(cluster.dir.join("log"))
            .arg("-D")
            .arg(&data)
            .args(["-o", &options, "start"]))?;
        Ok(cluster)
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = self
            .command(&self.pg_ctl.clone())
            .args(["-m", "immediate", "-D"])
            .arg(self.dir.join("data"))
            .arg("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{}_{:x}_{}",
        std::process::id(),
        t,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A fresh database for one test.
#[derive(Debug)]
pub struct Postgres {
    url: String,
    admin_url: String,
    database: String,
    psql: PathBuf,
    // Dropped last: the database goes first, then the server.
    _cluster: Option<PgCluster>,
}

impl Source {
    /// The URL in `var` when it is set, else the installed binaries.
    pub fn from_env(var: &str) -> Self {
        match std::env::var(var) {
            Ok(url) if !url.is_empty() => Source::Url(url),
            _ => Source::Binaries,
        }
    }
}

/// Runs a fixture's blocking start-up off the async runtime.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, FixtureError> + Send + 'static,
) -> Result<T, FixtureError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| FixtureError::Io(std::io::Error::other(e)))?
}

impl Postgres {
    /// `DATABASE_URL` if set, else a private cluster from the installed binaries.
    pub async fn start() -> Result<Self, FixtureError> {
        Self::start_with(Source::from_env("DATABASE_URL")).await
    }

    pub async fn start_with(source: Source) -> Result<Self, FixtureError> {
        blocking(move || Self::start_blocking(source)).await
    }

    fn start_blocking(source: Source) -> Result<Self, FixtureError> {
        let psql = find_binary("psql", &postgres_bin_dirs(), "DATABASE_URL")?;
        let (admin_url, cluster) = match source {
            Source::Url(url) => (url, None),
            Source::Binaries => {
                let port = free_port()?;
                let cluster = PgCluster::start(port)?;
                wait_for_port("postgres", port, 30)?;
                (
                    format!("postgres://postgres@127.0.0.1:{port}/postgres"),
                    Some(cluster),
                )
            }
        };
        let database = format!("agentbus_{}", uuid_like());
        run(Command::new(&psql)
            .arg(&admin_url)
            .args(["-v", "ON_ERROR_STOP=1", "-q", "-c"])
            .arg(format!("CREATE DATABASE {database}")))?;
        let url = match admin_url.rsplit_once('/') {
            Some((base, _)) if base.contains("://") && base.matches('/').count() >= 2 => {
                format!("{base}/{database}")
            }
            _ => format!("{admin_url}/{database}"),
        };
        Ok(Self {
            url,
            admin_url,
            database,
            psql,
            _cluster: cluster,
        })
    }

    /// `postgres://…/<fresh database>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Runs SQL with psql in this test's database; returns psql's unaligned output.
    pub fn psql(&self, sql: &str) -> Result<String, FixtureError> {
        run(Command::new(&self.psql).arg(&self.url).args([
            "-v",
            "ON_ERROR_STOP=1",
            "-qAt",
            "-c",
            sql,
        ]))
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = Command::new(&self.psql)
            .arg(&self.admin_url)
            .args(["-q", "-c"])
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.database
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A Redis for one test: its own key prefix, on a shared or private server.
#[derive(Debug)]
pub struct Redis {
    url: String,
    prefix: String,
    server: Option<Child>,
}

impl Redis {
    /// `REDIS_URL` if set, else a private `redis-server` from PATH.
    pub async fn start() -> Result<Self, FixtureError> {
        Self::start_with(Source::from_env("REDIS_URL")).await
    }

    pub async fn start_with(source: Source) -> Result<Self, FixtureError> {
        blocking(move || Self::start_blocking(source)).await
    }

    fn start_blocking(source: Source) -> Result<Self, FixtureError> {
        let prefix = format!("agentbus-test-{}:", uuid_like());
        match source {
            Source::Url(url) => Ok(Self {
                url,
                prefix,
                server: None,
            }),
            Source::Binaries => {
                let bin = find_binary("redis-server", &[], "REDIS_URL")?;
                let port = free_port()?;
                let server = Command::new(bin)
                    .args([
                        "--port",
                        &port.to_string(),
                        "--bind",
                        "127.0.0.1",
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                    ])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()?;
                let redis = Self {
                    url: format!("redis://127.0.0.1:{port}"),
                    prefix,
                    server: Some(server),
                };
                wait_for_port("redis-server", port, 10)?;
                Ok(redis)
            }
        }
    }

    /// `redis://host:port`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The key prefix this test owns.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(mut s) = self.server.take() {
            let _ = s.kill();
            let _ = s.wait();
        }
    }
}
