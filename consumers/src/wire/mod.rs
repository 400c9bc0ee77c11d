//! A Kafka wire client for the requests librdkafka does not expose (topic ids, SCRAM
//! users, ACLs): one connection to one broker, secured as the process's client
//! properties say (`security.protocol`, `ssl.*`, `sasl.*`: TLS, SASL PLAIN and SCRAM).

mod sasl;
mod tls;

pub use sasl::{random_salt, salted_password};

use agentbus_client::kafka_props::ClientProps;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Why a request could not be made.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("{broker}: {source}")]
    Io {
        broker: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{broker}: bad answer: {message}")]
    Protocol { broker: String, message: String },
    #[error("{broker}: authentication failed: {message}")]
    Auth { broker: String, message: String },
    #[error("invalid setting `{setting}`: {reason}")]
    Config { setting: String, reason: String },
}

/// A byte stream, plain or TLS.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// One connection to one broker.
pub struct WireClient {
    broker: String,
    stream: Box<dyn Stream>,
    next_id: i32,
    client_id: &'static str,
}

impl std::fmt::Debug for WireClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WireClient")
            .field("broker", &self.broker)
            .finish()
    }
}

impl WireClient {
    /// Connects to `broker` (`host:port`) and authenticates as `props` say.
    pub async fn connect(
        broker: &str,
        props: &ClientProps,
        client_id: &'static str,
    ) -> Result<Self, WireError> {
        let protocol = props
            .get("security.protocol")
            .unwrap_or("plaintext")
            .to_ascii_lowercase();
        let (use_tls, use_sasl) = match protocol.as_str() {
            "plaintext" => (false, false),
            "ssl" => (true, false),
            "sasl_plaintext" => (false, true),
            "sasl_ssl" => (true, true),
            other => {
                return Err(WireError::Config {
                    setting: "security.protocol".into(),
                    reason: format!("`{other}` is not plaintext, ssl, sasl_plaintext or sasl_ssl"),
                })
            }
        };
        let io = |source| WireError::Io {
            broker: broker.to_string(),
            source,
        };
        let tcp = TcpStream::connect(broker).await.map_err(io)?;
        let _ = tcp.set_nodelay(true);
        let stream: Box<dyn Stream> = if use_tls {
            Box::new(tls::connect(broker, tcp, props).await?)
        } else {
            Box::new(tcp)
        };
        let mut client = Self {
            broker: broker.to_string(),
            stream,
            next_id: 1,
            client_id,
        };
        if use_sasl {
            sasl::authenticate(&mut client, props).await?;
        }
        Ok(client)
    }

    pub fn broker(&self) -> &str {
        &self.broker
    }

    /// Connects to the first of `brokers` (a comma-separated list) that answers.
    pub async fn connect_any(
        brokers: &str,
        props: &ClientProps,
        client_id: &'static str,
    ) -> Result<Self, WireError> {
        let mut last = None;
        for broker in brokers.split(',').map(str::trim).filter(|b| !b.is_empty()) {
            match Self::connect(broker, props, client_id).await {
                Ok(c) => return Ok(c),
                Err(e @ (WireError::Auth { .. } | WireError::Config { .. })) => return Err(e),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| WireError::Config {
            setting: "bootstrap.servers".into(),
            reason: "no broker given".into(),
        }))
    }

    fn protocol(&self, message: impl std::fmt::Display) -> WireError {
        WireError::Protocol {
            broker: self.broker.clone(),
            message: message.to_string(),
        }
    }

    fn io(&self, source: std::io::Error) -> WireError {
        WireError::Io {
            broker: self.broker.clone(),
            source,
        }
    }

    /// Sends `request` at `version` and reads its response.
    pub async fn call<R: Request>(
        &mut self,
        version: i16,
        request: &R,
    ) -> Result<R::Response, WireError> {
        let api = ApiKey::try_from(R::KEY).map_err(|()| self.protocol("unknown api key"))?;
        let correlation_id = self.next_id;
        self.next_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str(self.client_id)));
        let mut body = BytesMut::new();
        header
            .encode(&mut body, api.request_header_version(version))
            .map_err(|e| self.protocol(e))?;
        request
            .encode(&mut body, version)
            .map_err(|e| self.protocol(e))?;
        let mut buf = self.exchange(&body).await?;
        let header = ResponseHeader::decode(&mut buf, api.response_header_version(version))
            .map_err(|e| self.protocol(e))?;
        if header.correlation_id != correlation_id {
            return Err(self.protocol("correlation id of another request"));
        }
        let response = R::Response::decode(&mut buf, version).map_err(|e| self.protocol(e))?;
        if buf.has_remaining() {
            return Err(self.protocol("trailing bytes"));
        }
        Ok(response)
    }

    /// Writes one length-prefixed frame and reads one back.
    async fn exchange(&mut self, body: &[u8]) -> Result<Bytes, WireError> {
        let mut frame = BytesMut::with_capacity(body.len() + 4);
        frame.put_i32(body.len() as i32);
        frame.extend_from_slice(body);
        let sent = async {
            self.stream.write_all(&frame).await?;
            self.stream.flush().await?;
            self.stream.read_i32().await
        };
        let len = sent.await.map_err(|e| self.io(e))?;
        if !(0..=64 << 20).contains(&len) {
            return Err(self.protocol(format!("a response of {len} bytes")));
        }
        let mut buf = vec![0u8; len as usize];
        self.stream
            .read_exact(&mut buf)
            .await
            .map_err(|e| self.io(e))?;
        Ok(Bytes::from(buf))
    }
}
