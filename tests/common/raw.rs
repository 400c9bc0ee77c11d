//! A bare Kafka client over one TCP connection, for requests rdkafka would never send.
#![allow(dead_code, unreachable_pub)]

use bytes::{Buf, BufMut, Bytes, BytesMut};
use indexmap::IndexMap;
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct Raw {
    pub stream: TcpStream,
    next_id: i32,
}

impl Raw {
    pub async fn connect(addr: &str) -> Self {
        Self {
            stream: TcpStream::connect(addr).await.expect("connect"),
            next_id: 1,
        }
    }

    /// Encodes a request frame (length prefix included).
    pub fn frame<R: Request>(&mut self, version: i16, req: &R) -> (i32, Bytes) {
        let api = ApiKey::try_from(R::KEY).expect("api key");
        let id = self.next_id;
        self.next_id += 1;
        let mut header = RequestHeader::default();
        header.request_api_key = R::KEY;
        header.request_api_version = version;
        header.correlation_id = id;
        header.client_id = Some(StrBytes::from_static_str("raw-test"));
        let mut body = BytesMut::new();
        header
            .encode(&mut body, api.request_header_version(version))
            .expect("header");
        req.encode(&mut body, version).expect("body");
        let mut out = BytesMut::new();
        out.put_i32(body.len() as i32);
        out.extend_from_slice(&body);
        (id, out.freeze())
    }

    pub async fn write(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// Reads one response frame; `None` when the broker closed the connection.
    pub async fn read_frame(&mut self) -> Option<Bytes> {
        let len = self.stream.read_i32().await.ok()?;
        let mut buf = vec![0u8; len as usize];
        self.stream.read_exact(&mut buf).await.ok()?;
        Some(Bytes::from(buf))
    }

    pub async fn send<R: Request>(&mut self, version: i16, req: &R) -> R::Response {
        let (id, frame) = self.frame(version, req);
        self.write(&frame).await;
        let mut resp = self.read_frame().await.expect("response frame");
        let api = ApiKey::try_from(R::KEY).expect("api key");
        let header = ResponseHeader::decode(&mut resp, api.response_header_version(version))
            .expect("header");
        assert_eq!(header.correlation_id, id);
        let body = R::Response::decode(&mut resp, version).expect("decode response");
        assert_eq!(resp.remaining(), 0, "trailing bytes in response");
        body
    }

    /// SaslHandshake v1 then one SaslAuthenticate v2 with SASL/PLAIN: the error code and
    /// how long the answer took.
    pub async fn authenticate_plain(
        &mut self,
        user: &str,
        password: &str,
    ) -> (i16, std::time::Duration) {
        use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
        let mut hs = SaslHandshakeRequest::default();
        hs.mechanism = StrBytes::from_static_str("PLAIN");
        let resp = self.send(1, &hs).await;
        assert_eq!(resp.error_code, 0);
        let mut auth = SaslAuthenticateRequest::default();
        auth.auth_bytes = format!("\0{user}\0{password}").into_bytes().into();
        let started = std::time::Instant::now();
        let resp = self.send(2, &auth).await;
        (resp.error_code, started.elapsed())
    }

    /// True once the broker has closed the connection.
    pub async fn is_closed(&mut self) -> bool {
        let mut buf = [0u8; 1];
        matches!(
            tokio::time::timeout(
                std::time::Duration::from_secs(5),
                self.stream.read(&mut buf)
            )
            .await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }
}

fn record(
    offset: usize,
    key: Option<&str>,
    value: Option<Bytes>,
    ts: i64,
    producer: (i64, i16, i32),
) -> Record {
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: producer.0,
        producer_epoch: producer.1,
        timestamp_type: TimestampType::Creation,
        offset: offset as i64,
        // The encoder starts a new batch wherever offset - sequence changes.
        sequence: producer.2 + offset as i32,
        timestamp: ts,
        key: key.map(|s| Bytes::copy_from_slice(s.as_bytes())),
        value,
        headers: IndexMap::new(),
    }
}

fn encode(records: &[Record], compression: Compression) -> Bytes {
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .expect("encode batch");
    buf.freeze()
}

/// One v2 batch of records with the given (key, value, timestamp).
pub fn batch(records: &[(Option<&str>, Option<&str>, i64)], compression: Compression) -> Bytes {
    let recs: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (k, v, ts))| {
            record(
                i,
                *k,
                v.map(|s| Bytes::copy_from_slice(s.as_bytes())),
                *ts,
                (-1, -1, 0),
            )
        })
        .collect();
    encode(&recs, compression)
}

/// One idempotent batch of `n` records from producer `pid` starting at sequence `seq`.
pub fn idempotent_batch(pid: i64, epoch: i16, seq: i32, n: usize) -> Bytes {
    let recs: Vec<Record> = (0..n)
        .map(|i| {
            record(
                i,
                None,
                Some(Bytes::from(format!("seq-{}", seq + i as i32))),
                1,
                (pid, epoch, seq),
            )
        })
        .collect();
    encode(&recs, Compression::None)
}

/// One transactional batch from producer `pid` starting at sequence `seq`.
pub fn txn_batch(pid: i64, epoch: i16, seq: i32, values: &[String]) -> Bytes {
    let recs: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            transactional: true,
            ..record(i, None, Some(Bytes::from(v.clone())), 1, (pid, epoch, seq))
        })
        .collect();
    encode(&recs, Compression::None)
}
