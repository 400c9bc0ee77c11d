//! The Kafka wire codec: request frames decoded, response frames encoded. Serving them
//! (faults, handlers) is `service`'s.
//!
//! [`SUPPORTED`] is the single list of what the broker implements: ApiVersions advertises
//! it, dispatch refuses anything outside it, and the README's table is generated from it.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, RequestHeader, RequestKind, ResponseHeader, ResponseKind,
};
use kafka_protocol::protocol::{Decodable, Encodable};

/// The APIs and version ranges this broker implements: (key, min, max).
pub(crate) const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 11),
    (ApiKey::Fetch, 4, 17),
    (ApiKey::ListOffsets, 1, 8),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::OffsetFetch, 1, 9),
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::DescribeLogDirs, 1, 4),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DescribeCluster, 0, 1),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::AddPartitionsToTxn, 0, 5),
    (ApiKey::AddOffsetsToTxn, 0, 4),
    // EndTxn v5 and Produce v12 are transaction version 2 (KIP-890), not offered.
    (ApiKey::EndTxn, 0, 4),
    (ApiKey::TxnOffsetCommit, 0, 5),
    (ApiKey::DescribeProducers, 0, 0),
    (ApiKey::DescribeTransactions, 0, 0),
    (ApiKey::ListTransactions, 0, 1),
    (ApiKey::ConsumerGroupHeartbeat, 0, 1),
    (ApiKey::ConsumerGroupDescribe, 0, 1),
    (ApiKey::SaslHandshake, 0, 1),
    (ApiKey::SaslAuthenticate, 0, 2),
    (ApiKey::DescribeUserScramCredentials, 0, 0),
    (ApiKey::AlterUserScramCredentials, 0, 0),
    (ApiKey::DescribeAcls, 0, 3),
    (ApiKey::CreateAcls, 0, 3),
    (ApiKey::DeleteAcls, 0, 3),
];

mod legacy;
pub(crate) mod releases;
pub(crate) use releases::Release;

/// The APIs and versions a broker offers: [`SUPPORTED`], or an emulated release's.
#[derive(Debug, Clone)]
pub(crate) struct ApiTable {
    ranges: Vec<(ApiKey, i16, i16)>,
    /// ApiVersions v3+ `supported_features` (name, min, max), and the finalized levels.
    features: &'static [(&'static str, i16, i16)],
    /// ApiVersions v3+ `finalized_features` (name, level).
    finalized: &'static [(&'static str, i16)],
}

impl Default for ApiTable {
    fn default() -> Self {
        Self {
            ranges: SUPPORTED.to_vec(),
            features: &[],
            finalized: &[],
        }
    }
}

impl ApiTable {
    /// What `release` advertised, as far as agentbus implements it (the legacy layouts
    /// included): each API's range is the release's, cut to what is implemented.
    pub(crate) fn emulating(release: &Release) -> Self {
        let ranges = release
            .apis
            .iter()
            .filter_map(|&(key, min, max)| {
                let (api, smin, smax) = SUPPORTED
                    .iter()
                    .copied()
                    .find(|(k, _, _)| *k as i16 == key)?;
                let lowest = legacy::LEGACY
                    .iter()
                    .find(|(k, _, _)| *k == api)
                    .map_or(smin, |(_, lmin, _)| (*lmin).min(smin));
                let (lo, hi) = (min.max(lowest), max.min(smax));
                (lo <= hi).then_some((api, lo, hi))
            })
            .collect();
        Self {
            ranges,
            features: release.features,
            finalized: release.finalized,
        }
    }

    /// The offered range of one API key, if any.
    pub(crate) fn range(&self, key: i16) -> Option<(ApiKey, i16, i16)> {
        self.ranges
            .iter()
            .copied()
            .find(|(k, _, _)| *k as i16 == key)
    }

    pub(crate) fn ranges(&self) -> &[(ApiKey, i16, i16)] {
        &self.ranges
    }
}

/// A frame that cannot be served; the connection is closed after logging it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    #[error("frame of {0} bytes is too short for a request header")]
    TooShort(usize),
    #[error("unknown api key {0}")]
    UnknownApiKey(i16),
    #[error("{api:?} v{version} is not supported (supported: v{min}-v{max})")]
    UnsupportedVersion {
        api: ApiKey,
        version: i16,
        min: i16,
        max: i16,
    },
    #[error("cannot decode {api:?} v{version}: {reason}")]
    Decode {
        api: ApiKey,
        version: i16,
        reason: String,
    },
    #[error("injected disconnect on {0:?}")]
    Injected(ApiKey),
    #[error("cannot encode response to {api:?} v{version}: {reason}")]
    Encode {
        api: ApiKey,
        version: i16,
        reason: String,
    },
}

/// Who is on the other end of a connection, and which presented broker it reached.
#[derive(Debug, Clone)]
pub(crate) struct Connection {
    pub client_host: String,
    pub node_id: i32,
    /// Index of the listener it came in on (its addresses are the ones clients get).
    pub listener: usize,
    /// Who the client authenticated as (`User:NAME`, `User:ANONYMOUS`).
    pub principal: std::sync::Arc<str>,
}

/// A decoded request with what a handler needs of its header.
#[derive(Debug)]
pub(crate) struct Request {
    pub api: ApiKey,
    pub version: i16,
    pub header: RequestHeader,
    pub body: RequestKind,
    /// The client's address as DescribeGroups reports it (`/127.0.0.1`).
    pub client_host: String,
    /// The presented broker the request came in on.
    pub node_id: i32,
    /// Index of the listener it came in on.
    pub listener: usize,
    /// Who sent it (`User:NAME`, `User:ANONYMOUS`).
    pub principal: std::sync::Arc<str>,
}

impl Request {
    /// The client id from the header, or "".
    pub(crate) fn client_id(&self) -> String {
        self.header
            .client_id
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_default()
    }
}

/// A request frame, decoded. (Unboxed: it is matched once, right after decoding.)
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub(crate) enum Decoded {
    Request {
        correlation_id: i32,
        header: RequestHeader,
        body: RequestKind,
        /// Bytes after the body (ignored, as Kafka does).
        trailing: usize,
        api: ApiKey,
        version: i16,
    },
    /// ApiVersions in a version outside the supported range: answered in the v0 format
    /// (KIP-511) so any client can read the ranges and retry.
    ApiVersionsUnsupported { correlation_id: i32 },
}

/// Decodes one request frame (without its length prefix), if `table` offers its version.
pub(crate) fn decode(mut frame: Bytes, table: &ApiTable) -> Result<Decoded, FrameError> {
    if frame.len() < 8 {
        return Err(FrameError::TooShort(frame.len()));
    }
    let key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let (api, min, max) = table.range(key).ok_or(FrameError::UnknownApiKey(key))?;
    if version < min || version > max {
        if api == ApiKey::ApiVersions {
            return Ok(Decoded::ApiVersionsUnsupported { correlation_id });
        }
        return Err(FrameError::UnsupportedVersion {
            api,
            version,
            min,
            max,
        });
    }
    let decode_err = |e: anyhow::Error| FrameError::Decode {
        api,
        version,
        reason: e.to_string(),
    };
    let header = RequestHeader::decode(&mut frame, api.request_header_version(version))
        .map_err(decode_err)?;
    let body = if legacy::is_legacy(api, version) {
        legacy::decode(api, version, &mut frame)
    } else {
        RequestKind::decode(api, &mut frame, version)
    }
    .map_err(decode_err)?;
    Ok(Decoded::Request {
        correlation_id,
        header,
        body,
        trailing: frame.remaining(),
        api,
        version,
    })
}

/// Appends one response frame, length prefix included, to `buf`.
pub(crate) fn encode(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    response: &ResponseKind,
    buf: &mut BytesMut,
) -> Result<(), FrameError> {
    let encode_err = |e: anyhow::Error| FrameError::Encode {
        api,
        version,
        reason: e.to_string(),
    };
    let start = buf.len();
    buf.put_i32(0);
    let mut header = ResponseHeader::default();
    header.correlation_id = correlation_id;
    let encoded = header
        .encode(buf, api.response_header_version(version))
        .and_then(|()| {
            if legacy::is_legacy(api, version) {
                legacy::encode(version, response, buf)
            } else {
                response.encode(buf, version)
            }
        });
    if let Err(e) = encoded {
        buf.truncate(start);
        return Err(encode_err(e));
    }
    let len = (buf.len() - start - 4) as i32;
    buf[start..start + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// The ApiVersions body listing what `table` offers.
pub(crate) fn api_versions_response(table: &ApiTable, error_code: i16) -> ApiVersionsResponse {
    use kafka_protocol::messages::api_versions_response::{
        ApiVersion, FinalizedFeatureKey, SupportedFeatureKey,
    };
    let mut resp = ApiVersionsResponse::default();
    resp.error_code = error_code;
    resp.supported_features = table
        .features
        .iter()
        .map(|(name, min, max)| {
            let mut f = SupportedFeatureKey::default();
            f.name = kafka_protocol::protocol::StrBytes::from_static_str(name);
            f.min_version = *min;
            f.max_version = *max;
            f
        })
        .collect();
    resp.finalized_features = table
        .finalized
        .iter()
        .map(|(name, level)| {
            let mut f = FinalizedFeatureKey::default();
            f.name = kafka_protocol::protocol::StrBytes::from_static_str(name);
            f.min_version_level = *level;
            f.max_version_level = *level;
            f
        })
        .collect();
    if !table.finalized.is_empty() {
        resp.finalized_features_epoch = 1;
    }
    resp.api_keys = table
        .ranges
        .iter()
        .map(|(k, min, max)| {
            let mut v = ApiVersion::default();
            v.api_key = *k as i16;
            v.min_version = *min;
            v.max_version = *max;
            v
        })
        .collect();
    resp
}

/// The README's table of supported APIs, generated from [`SUPPORTED`].
pub fn supported_table_markdown() -> String {
    let mut out = String::from("| API | key | versions |\n|---|---|---|\n");
    let mut rows: Vec<_> = SUPPORTED.to_vec();
    rows.sort_by_key(|(k, _, _)| *k as i16);
    for (k, min, max) in rows {
        out.push_str(&format!("| {k:?} | {} | {min}–{max} |\n", k as i16));
    }
    out
}

/// The README's table of emulated releases (`--as-kafka`), generated from [`releases`]:
/// what each changes and the API versions where it differs from the default.
pub fn releases_table_markdown() -> String {
    let newest = ApiTable::default();
    let mut out = String::from(
        "| `--as-kafka` | What a client sees change | Versions offered that differ from the default (the release's, cut to what agentbus implements) |\n|---|---|---|\n",
    );
    for r in releases::all() {
        let table = ApiTable::emulating(r);
        let mut diffs: Vec<String> = table
            .ranges()
            .iter()
            .filter(|(k, min, max)| newest.range(*k as i16) != Some((*k, *min, *max)))
            .map(|(k, min, max)| format!("{k:?} {min}–{max}"))
            .collect();
        let missing: Vec<String> = newest
            .ranges()
            .iter()
            .filter(|(k, _, _)| table.range(*k as i16).is_none())
            .map(|(k, _, _)| format!("{k:?}"))
            .collect();
        if !missing.is_empty() {
            diffs.push(format!("not offered: {}", missing.join(", ")));
        }
        let diffs = if diffs.is_empty() {
            "none".to_string()
        } else {
            diffs.join("; ")
        };
        out.push_str(&format!("| {} | {} | {diffs} |\n", r.name, r.changes));
    }
    out
}
