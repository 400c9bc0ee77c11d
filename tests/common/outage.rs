//! A TCP proxy that cuts a server off (open connections cut, new ones refused) and
//! lets it back.
#![allow(dead_code)]

use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// A TCP proxy in front of a server (PostgreSQL, Redis) that can be switched off: open connections are
/// cut and new ones refused.
pub struct Outage {
    port: u16,
    down: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Outage {
    pub fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let down = Arc::new(AtomicBool::new(false));
        let open = Arc::new(Mutex::new(Vec::new()));
        let (d, o) = (down.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                if d.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let mut o = o.lock().unwrap();
                o.push(client.try_clone().unwrap());
                o.push(server.try_clone().unwrap());
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Self { port, down, open }
    }

    /// A proxy in front of the server of `url` (`scheme://[user@]host[:port][/path]`,
    /// default port `default_port`), and `url` through it.
    pub fn before(url: &str, default_port: u16) -> (Self, String) {
        let (upstream, _) = via_port(url, 0, default_port);
        let outage = Self::start(upstream);
        let (_, proxied) = via_port(url, outage.port, default_port);
        (outage, proxied)
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
        if down {
            for s in self.open.lock().unwrap().drain(..) {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }
}

/// The port of a `scheme://[user@]host[:port][/path]` URL, and the URL with `port`
/// instead (loopback host).
fn via_port(url: &str, port: u16, default_port: u16) -> (u16, String) {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (userinfo, rest) = rest
        .rsplit_once('@')
        .map(|(u, r)| (format!("{u}@"), r))
        .unwrap_or((String::new(), rest));
    let (hostport, path) = rest.split_once('/').unwrap_or((rest, ""));
    let old = hostport
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or(default_port);
    let path = if path.is_empty() {
        String::new()
    } else {
        format!("/{path}")
    };
    (old, format!("{scheme}://{userinfo}127.0.0.1:{port}{path}"))
}
