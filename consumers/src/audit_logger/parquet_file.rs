//! One open archive file: the rows of a partition encoded as Parquet (zstd) row group
//! by row group into memory, so that an open file holds its compressed bytes and at
//! most one row group of rows.

use super::schema::{message_type, typed_columns, Cell, Kind, Row};
use agentbus_client::Topic;
use parquet::basic::{Compression, ZstdLevel};
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, DoubleType, Int32Type, Int64Type};
use parquet::errors::ParquetError;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::{SerializedColumnWriter, SerializedFileWriter};
use std::sync::Arc;

/// Rows per row group.
const ROW_GROUP: usize = 2_000;

/// A file being written.
pub(super) struct OpenFile {
    pub(super) topic: Topic,
    pub(super) partition: i32,
    pub(super) first: i64,
    pub(super) last: i64,
    pub(super) records: usize,
    /// The UTC hour (ms of its start) of the records, from their timestamps.
    pub(super) hour: i64,
    rows: Vec<Row>,
    /// What `rows` hold, roughly (kept as they come: asked after every batch).
    rows_bytes: usize,
    writer: SerializedFileWriter<Vec<u8>>,
}

impl std::fmt::Debug for OpenFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenFile")
            .field("topic", &self.topic)
            .field("partition", &self.partition)
            .field("first", &self.first)
            .field("last", &self.last)
            .finish()
    }
}

/// A closed file: its bytes and what it holds.
#[derive(Debug)]
pub(super) struct ClosedFile {
    pub(super) topic: Topic,
    pub(super) partition: i32,
    pub(super) first: i64,
    pub(super) last: i64,
    pub(super) records: usize,
    pub(super) hour: i64,
    pub(super) bytes: Vec<u8>,
}

impl OpenFile {
    pub(super) fn new(
        topic: Topic,
        partition: i32,
        topic_id: Option<&str>,
        first: &Row,
        hour: i64,
    ) -> Result<Self, ParquetError> {
        let schema = Arc::new(parquet::schema::parser::parse_message_type(&message_type(
            topic,
        ))?);
        let mut metadata = vec![
            KeyValue::new("agentbus.topic".into(), topic.name().to_string()),
            KeyValue::new("agentbus.partition".into(), partition.to_string()),
        ];
        if let Some(id) = topic_id {
            metadata.push(KeyValue::new("agentbus.topic_id".into(), id.to_string()));
        }
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
            .set_key_value_metadata(Some(metadata))
            .set_created_by("agentbus audit-logger".into())
            .build();
        Ok(Self {
            topic,
            partition,
            first: first.offset,
            last: first.offset,
            records: 0,
            hour,
            rows: Vec::with_capacity(ROW_GROUP),
            rows_bytes: 0,
            writer: SerializedFileWriter::new(Vec::new(), schema, Arc::new(props))?,
        })
    }

    pub(super) fn push(&mut self, row: Row) -> Result<(), ParquetError> {
        self.last = row.offset;
        self.records += 1;
        self.rows_bytes += 64 + row.value.as_ref().map_or(0, Vec::len);
        self.rows.push(row);
        if self.rows.len() >= ROW_GROUP {
            self.write_row_group()?;
        }
        Ok(())
    }

    /// Bytes held: encoded row groups and the rows waiting for theirs.
    pub(super) fn buffered_bytes(&self) -> usize {
        self.writer.inner().len() + self.rows_bytes
    }

    pub(super) fn finish(mut self) -> Result<ClosedFile, ParquetError> {
        self.write_row_group()?;
        let bytes = self.writer.into_inner()?;
        Ok(ClosedFile {
            topic: self.topic,
            partition: self.partition,
            first: self.first,
            last: self.last,
            records: self.records,
            hour: self.hour,
            bytes,
        })
    }

    fn write_row_group(&mut self) -> Result<(), ParquetError> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.rows);
        let typed = typed_columns(self.topic);
        let mut group = self.writer.next_row_group()?;
        let mut leaf = 0;
        while let Some(mut col) = group.next_column()? {
            write_leaf(&mut col, leaf, self.topic, self.partition, typed, &rows)?;
            col.close()?;
            leaf += 1;
        }
        group.close()?;
        self.rows = rows;
        self.rows.clear();
        self.rows_bytes = 0;
        Ok(())
    }
}

fn bytes(v: &[u8]) -> ByteArray {
    ByteArray::from(v.to_vec())
}

/// Values and definition levels of an optional column.
fn optional<T>(items: impl Iterator<Item = Option<T>>) -> (Vec<T>, Vec<i16>) {
    let mut values = Vec::new();
    let mut defs = Vec::new();
    for item in items {
        match item {
            Some(v) => {
                values.push(v);
                defs.push(1);
            }
            None => defs.push(0),
        }
    }
    (values, defs)
}

/// Writes leaf `leaf` of the schema (in `message_type`'s order) for `rows`.
fn write_leaf(
    col: &mut SerializedColumnWriter<'_>,
    leaf: usize,
    topic: Topic,
    partition: i32,
    typed: &[(&str, Kind)],
    rows: &[Row],
) -> Result<(), ParquetError> {
    let n = rows.len();
    let text = |s: Option<&str>| s.map(|s| bytes(s.as_bytes()));
    match leaf {
        0 => {
            let v = vec![bytes(topic.name().as_bytes()); n];
            col.typed::<ByteArrayType>().write_batch(&v, None, None)?;
        }
        1 => {
            col.typed::<Int32Type>()
                .write_batch(&vec![partition; n], None, None)?;
        }
        2 => {
            let v: Vec<i64> = rows.iter().map(|r| r.offset).collect();
            col.typed::<Int64Type>().write_batch(&v, None, None)?;
        }
        3 => {
            let (v, d) = optional(rows.iter().map(|r| r.timestamp));
            col.typed::<Int64Type>().write_batch(&v, Some(&d), None)?;
        }
        4 => {
            let v: Vec<ByteArray> = rows
                .iter()
                .map(|r| bytes(r.timestamp_type.as_bytes()))
                .collect();
            col.typed::<ByteArrayType>().write_batch(&v, None, None)?;
        }
        5 => {
            let (v, d) = optional(rows.iter().map(|r| r.key.as_deref().map(bytes)));
            col.typed::<ByteArrayType>()
                .write_batch(&v, Some(&d), None)?;
        }
        6 | 7 => write_headers(col, leaf == 6, rows)?,
        8 => {
            let (v, d) = optional(rows.iter().map(|r| text(r.event_id.as_deref())));
            col.typed::<ByteArrayType>()
                .write_batch(&v, Some(&d), None)?;
        }
        9 => {
            let (v, d) = optional(rows.iter().map(|r| text(r.correlation_id.as_deref())));
            col.typed::<ByteArrayType>()
                .write_batch(&v, Some(&d), None)?;
        }
        10 => {
            let (v, d) = optional(rows.iter().map(|r| r.event_timestamp));
            col.typed::<Int64Type>().write_batch(&v, Some(&d), None)?;
        }
        11 => {
            let (v, d) = optional(rows.iter().map(|r| r.value.as_deref().map(bytes)));
            col.typed::<ByteArrayType>()
                .write_batch(&v, Some(&d), None)?;
        }
        12 => {
            let (v, d) = optional(rows.iter().map(|r| text(r.error.as_deref())));
            col.typed::<ByteArrayType>()
                .write_batch(&v, Some(&d), None)?;
        }
        i => {
            let k = i - 13;
            let kind = typed
                .get(k)
                .map(|(_, kind)| *kind)
                .ok_or_else(|| ParquetError::General(format!("no column {i}")))?;
            let cells = rows.iter().map(|r| r.typed.get(k).cloned().flatten());
            match kind {
                Kind::Text => {
                    let (v, d) = optional(cells.map(|c| match c {
                        Some(Cell::Text(s)) => Some(bytes(s.as_bytes())),
                        _ => None,
                    }));
                    col.typed::<ByteArrayType>()
                        .write_batch(&v, Some(&d), None)?;
                }
                Kind::Int => {
                    let (v, d) = optional(cells.map(|c| match c {
                        Some(Cell::Int(x)) => Some(x),
                        _ => None,
                    }));
                    col.typed::<Int64Type>().write_batch(&v, Some(&d), None)?;
                }
                Kind::Float => {
                    let (v, d) = optional(cells.map(|c| match c {
                        Some(Cell::Float(x)) => Some(x),
                        _ => None,
                    }));
                    col.typed::<DoubleType>().write_batch(&v, Some(&d), None)?;
                }
                Kind::Bool => {
                    let (v, d) = optional(cells.map(|c| match c {
                        Some(Cell::Bool(x)) => Some(x),
                        _ => None,
                    }));
                    col.typed::<BoolType>().write_batch(&v, Some(&d), None)?;
                }
            }
        }
    }
    Ok(())
}

/// `headers` is a repeated group of (name, optional value): repetition level 0 opens a
/// row's list, 1 continues it; a row without headers is one entry at definition 0.
fn write_headers(
    col: &mut SerializedColumnWriter<'_>,
    names: bool,
    rows: &[Row],
) -> Result<(), ParquetError> {
    let mut values = Vec::new();
    let mut defs = Vec::new();
    let mut reps = Vec::new();
    for r in rows {
        if r.headers.is_empty() {
            defs.push(0);
            reps.push(0);
            continue;
        }
        for (i, (name, value)) in r.headers.iter().enumerate() {
            reps.push(i16::from(i > 0));
            if names {
                defs.push(1);
                values.push(bytes(name.as_bytes()));
            } else if let Some(v) = value {
                defs.push(2);
                values.push(bytes(v));
            } else {
                defs.push(1);
            }
        }
    }
    col.typed::<ByteArrayType>()
        .write_batch(&values, Some(&defs), Some(&reps))?;
    Ok(())
}
