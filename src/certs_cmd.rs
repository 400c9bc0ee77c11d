//! `agentbus certs dev`: a CA and a broker certificate for local TLS (and client
//! certificates for mutual TLS), written as PEM files, with the settings that use them.

use agentbus_testkit::DevCerts;
use anyhow::Context;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub(crate) struct CertsArgs {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Write ca.pem, broker.pem and broker-key.pem (for localhost, 127.0.0.1, ::1 and
    /// each --host), and NAME.pem / NAME-key.pem for each --client.
    Dev {
        /// Where to write them.
        #[arg(long, default_value = "certs")]
        dir: PathBuf,
        /// A further name or address the broker is reached at (repeatable).
        #[arg(long = "host", value_name = "NAME")]
        hosts: Vec<String>,
        /// A client certificate with subject CN=NAME,O=agentbus (repeatable).
        #[arg(long = "client", value_name = "NAME")]
        clients: Vec<String>,
    },
}

pub(crate) fn run(args: CertsArgs) -> anyhow::Result<()> {
    let Action::Dev {
        dir,
        hosts,
        clients,
    } = args.action;
    let certs = DevCerts::generate(&dir, &hosts).context("agentbus certs dev")?;
    let mut out = format!(
        "wrote {}, {}, {}\n\nbroker:  --ssl-certificate-location {} --ssl-key-location {}\n         (--ssl-ca-location {} --ssl-client-auth required for mutual TLS)\nclients: ssl.ca.location={}  (KAFKA_SSL_CA_LOCATION)\n",
        certs.ca.display(),
        certs.certificate.display(),
        certs.key.display(),
        certs.certificate.display(),
        certs.key.display(),
        certs.ca.display(),
        certs.ca.display(),
    );
    for name in &clients {
        let (cert, key) = certs.client(name).context("agentbus certs dev --client")?;
        out.push_str(&format!(
            "client {name} (principal User:CN={name},O=agentbus): ssl.certificate.location={} ssl.key.location={}\n",
            cert.display(),
            key.display()
        ));
    }
    crate::emit(&out)
}
