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

/// A PostgreSQL server of its own: a data directory and a postmaster on a free loopback
/// port, from the installed `initdb`/`pg_ctl`. Throw-away ([`PgServer::temporary`]) for
/// tests, or kept in a directory across runs ([`PgServer::start_in`]) for `agentbus dev`.
/// Dropping it stops the server (and removes a temporary one's directory).
#[derive(Debug)]
pub struct PgServer {
    pg_ctl: PathBuf,
    dir: PathBuf,
    port: u16,
    run_as_postgres: bool,
    keep: bool,
}

impl PgServer {
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

    /// A server in a new temporary directory, removed when it is dropped.
    pub fn temporary() -> Result<Self, FixtureError> {
        let dir = std::env::temp_dir().join(format!("agentbus-pg-{}", uuid_like()));
        Self::start(&dir, false, &["-c", "fsync=off"])
    }

    /// A server whose cluster lives in `dir` (created by `initdb` on first use) and
    /// survives this process: the same databases next time.
    pub fn start_in(dir: &Path) -> Result<Self, FixtureError> {
        Self::start(dir, true, &[])
    }

    fn start(dir: &Path, keep: bool, settings: &[&str]) -> Result<Self, FixtureError> {
        let dirs = postgres_bin_dirs();
        let initdb = find_binary("initdb", &dirs, "DATABASE_URL")?;
        let pg_ctl = find_binary("pg_ctl", &dirs, "DATABASE_URL")?;
        std::fs::create_dir_all(dir)?;
        let dir = dir.canonicalize()?;
        let run_as_postgres = is_root();
        if run_as_postgres {
            run(Command::new("chown").args(["-R", "postgres"]).arg(&dir))?;
        }
        let server = Self {
            pg_ctl,
            dir,
            port: free_port()?,
            run_as_postgres,
            keep,
        };
        let data = server.dir.join("data");
        if !data.join("PG_VERSION").is_file() {
            run(server
                .command(&initdb)
                .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
                .arg(&data))?;
        } else {
            // A server an earlier run left behind (killed before it could stop it).
            server.stop("fast");
        }
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} {}",
            server.port,
            server.dir.display(),
            settings.join(" ")
        );
        run(server
            .command(&server.pg_ctl)
            .args(["-w", "-t", "30", "-l"])
            .arg(server.dir.join("log"))
            .arg("-D")
            .arg(&data)
            .args(["-o", &options, "start"]))?;
        wait_for_port("postgres", server.port, 30)?;
        Ok(server)
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn stop(&self, mode: &str) {
        let _ = self
            .command(&self.pg_ctl.clone())
            .args(["-m", mode, "-D"])
            .arg(self.dir.join("data"))
            .arg("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if self.keep {
            self.stop("fast");
        } else {
            self.stop("immediate");
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

pub(crate) fn uuid_like() -> String {
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
    _cluster: Option<PgServer>,
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
                let server = PgServer::temporary()?;
                (server.admin_url(), Some(server))
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
    _server: Option<RedisServer>,
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
                _server: None,
            }),
            Source::Binaries => {
                let server = RedisServer::start(None)?;
                Ok(Self {
                    url: server.url(),
                    prefix,
                    _server: Some(server),
                })
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

/// On a shared server the test's keys go with it, as a test database does (a private
/// server goes whole). Best effort, through `redis-cli` when it is there.
impl Drop for Redis {
    fn drop(&mut self) {
        if self._server.is_some() {
            return;
        }
        let Ok(cli) = find_binary("redis-cli", &[], "REDIS_URL") else {
            return;
        };
        let delete = "local n = 0 for _, k in ipairs(redis.call('KEYS', ARGV[1])) do \
                      redis.call('DEL', k) n = n + 1 end return n";
        let _ = Command::new(cli)
            .args(["-u", &self.url, "EVAL", delete, "0"])
            .arg(format!("{}*", self.prefix))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A `redis-server` of its own on a free loopback port, from PATH; stopped when dropped.
#[derive(Debug)]
pub struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    /// Keeps nothing without `dir`; with it, an append-only file there (the same keys
    /// next time).
    pub fn start(dir: Option<&Path>) -> Result<Self, FixtureError> {
        let bin = find_binary("redis-server", &[], "REDIS_URL")?;
        let port = free_port()?;
        let mut cmd = Command::new(bin);
        cmd.args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ]);
        match dir {
            Some(dir) => {
                std::fs::create_dir_all(dir)?;
                cmd.arg("--dir").arg(dir.canonicalize()?);
                cmd.args(["--appendonly", "yes"]);
            }
            None => {
                cmd.args(["--appendonly", "no"]);
            }
        }
        let child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn()?;
        let server = Self { child, port };
        wait_for_port("redis-server", port, 10)?;
        Ok(server)
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // SIGTERM first: an append-only file is flushed and closed.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
