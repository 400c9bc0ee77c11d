//! Reading the archive back (`agentbus audit cat`): a Parquet file's rows as the
//! records they were.

use parquet::errors::ParquetError;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::{Field, Row};

/// One archived record, read back.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ArchivedRow {
    /// Source topic.
    pub topic: String,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
    /// Record timestamp (ms).
    pub timestamp: Option<i64>,
    /// `CreateTime`, `LogAppendTime` or `NoTimestamp`.
    pub timestamp_type: String,
    /// Record key.
    pub key: Option<Vec<u8>>,
    /// Record headers.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// `event_id` of a valid event.
    pub event_id: Option<String>,
    /// `correlation_id` of a valid event.
    pub correlation_id: Option<String>,
    /// The event's own timestamp (ms).
    pub event_timestamp: Option<i64>,
    /// The value as received.
    pub value: Option<Vec<u8>>,
    /// Why the value is not a valid event.
    pub error: Option<String>,
    /// The typed columns, by name.
    pub typed: Vec<(String, serde_json::Value)>,
}

fn bytes(f: &Field) -> Option<Vec<u8>> {
    match f {
        Field::Bytes(b) => Some(b.data().to_vec()),
        Field::Str(s) => Some(s.as_bytes().to_vec()),
        _ => None,
    }
}

fn text(f: &Field) -> Option<String> {
    match f {
        Field::Str(s) => Some(s.clone()),
        Field::Bytes(b) => Some(String::from_utf8_lossy(b.data()).into_owned()),
        _ => None,
    }
}

fn millis(f: &Field) -> Option<i64> {
    match f {
        Field::TimestampMillis(v) | Field::Long(v) => Some(*v),
        _ => None,
    }
}

fn headers(f: &Field) -> Vec<(String, Option<Vec<u8>>)> {
    let Field::ListInternal(list) = f else {
        return Vec::new();
    };
    list.elements()
        .iter()
        .filter_map(|e| match e {
            Field::Group(g) => {
                let mut name = None;
                let mut value = None;
                for (k, v) in g.get_column_iter() {
                    match k.as_str() {
                        "name" => name = text(v),
                        "value" => value = bytes(v),
                        _ => {}
                    }
                }
                Some((name?, value))
            }
            _ => None,
        })
        .collect()
}

fn json(f: &Field) -> serde_json::Value {
    match f {
        Field::Null => serde_json::Value::Null,
        Field::Bool(b) => (*b).into(),
        Field::Long(v) => (*v).into(),
        Field::Int(v) => (*v).into(),
        Field::Double(v) => (*v).into(),
        Field::Str(s) => s.clone().into(),
        other => other.to_string().into(),
    }
}

impl ArchivedRow {
    fn of(row: &Row) -> Self {
        let mut r = ArchivedRow::default();
        for (name, f) in row.get_column_iter() {
            match name.as_str() {
                "topic" => r.topic = text(f).unwrap_or_default(),
                "partition" => {
                    if let Field::Int(p) = f {
                        r.partition = *p;
                    }
                }
                "offset" => r.offset = millis(f).unwrap_or_default(),
                "timestamp" => r.timestamp = millis(f),
                "timestamp_type" => r.timestamp_type = text(f).unwrap_or_default(),
                "key" => r.key = bytes(f),
                "headers" => r.headers = headers(f),
                "event_id" => r.event_id = text(f),
                "correlation_id" => r.correlation_id = text(f),
                "event_timestamp" => r.event_timestamp = millis(f),
                "value" => r.value = bytes(f),
                "error" => r.error = text(f),
                other => r.typed.push((other.to_string(), json(f))),
            }
        }
        r
    }

    /// One JSON line: the value as JSON when it is, else as text.
    pub fn json(&self) -> serde_json::Value {
        let value = self.value.as_deref().map(|v| {
            serde_json::from_slice::<serde_json::Value>(v)
                .unwrap_or_else(|_| String::from_utf8_lossy(v).into_owned().into())
        });
        let headers: serde_json::Map<String, serde_json::Value> = self
            .headers
            .iter()
            .map(|(k, v)| {
                let v = v
                    .as_deref()
                    .map(|v| String::from_utf8_lossy(v).into_owned().into())
                    .unwrap_or(serde_json::Value::Null);
                (k.clone(), v)
            })
            .collect();
        serde_json::json!({
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "timestamp": self.timestamp,
            "timestamp_type": self.timestamp_type,
            "key": self.key.as_deref().map(|k| String::from_utf8_lossy(k).into_owned()),
            "headers": headers,
            "error": self.error,
            "value": value,
        })
    }
}

/// Every row of a Parquet file.
pub fn rows(file: bytes::Bytes) -> Result<Vec<ArchivedRow>, ParquetError> {
    let reader = SerializedFileReader::new(file)?;
    let mut out = Vec::with_capacity(reader.metadata().file_metadata().num_rows() as usize);
    for row in reader.get_row_iter(None)? {
        out.push(ArchivedRow::of(&row?));
    }
    Ok(out)
}
