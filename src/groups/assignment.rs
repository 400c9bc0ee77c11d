//! The members' assignments as DescribeGroups returns them: ConsumerProtocolAssignment
//! bytes (a version, then the message), decoded by `kafka-protocol`.

use bytes::Buf;
use kafka_protocol::messages::ConsumerProtocolAssignment;
use kafka_protocol::protocol::Decodable;

/// The assignment and how many bytes followed it.
fn decode(buf: &[u8]) -> anyhow::Result<(ConsumerProtocolAssignment, usize)> {
    let mut bytes = bytes::Bytes::copy_from_slice(buf);
    if bytes.remaining() < 2 {
        anyhow::bail!("malformed consumer assignment: no version");
    }
    let version = bytes.get_i16();
    // Versions above 3 keep the v3 layout for what is read here (as the Java client does).
    let a = ConsumerProtocolAssignment::decode(&mut bytes, version.clamp(0, 3))
        .map_err(|e| anyhow::anyhow!("malformed consumer assignment: {e}"))?;
    Ok((a, bytes.remaining()))
}

/// The topics and partitions in `buf`; empty bytes mean "no assignment".
pub(super) fn decode_assignment(buf: &[u8]) -> anyhow::Result<Vec<(String, Vec<i32>)>> {
    if buf.is_empty() {
        return Ok(Vec::new());
    }
    let (a, _) = decode(buf).or_else(|e| {
        // Some clients leave out the trailing user data; read it as null then (and only
        // then: a truncated user data stays an error).
        match decode(&[buf, &[0xff; 4]].concat()) {
            Ok((a, 0)) => Ok((a, 0)),
            _ => Err(e),
        }
    })?;
    Ok(a.assigned_partitions
        .into_iter()
        .map(|t| (t.topic.0.to_string(), t.partitions))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(version: i16, topics: &[(&str, &[i32])], user_data: Option<&[u8]>) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&version.to_be_bytes());
        b.extend_from_slice(&(topics.len() as i32).to_be_bytes());
        for (t, ps) in topics {
            b.extend_from_slice(&(t.len() as i16).to_be_bytes());
            b.extend_from_slice(t.as_bytes());
            b.extend_from_slice(&(ps.len() as i32).to_be_bytes());
            for p in *ps {
                b.extend_from_slice(&p.to_be_bytes());
            }
        }
        match user_data {
            None => b.extend_from_slice(&(-1_i32).to_be_bytes()),
            Some(d) => {
                b.extend_from_slice(&(d.len() as i32).to_be_bytes());
                b.extend_from_slice(d);
            }
        }
        b
    }

    #[test]
    fn decodes_assignments() {
        let b = encode(0, &[("orders", &[0, 2]), ("audit", &[1])], None);
        assert_eq!(
            decode_assignment(&b).unwrap(),
            vec![
                ("orders".to_string(), vec![0, 2]),
                ("audit".to_string(), vec![1])
            ]
        );
        let b = encode(3, &[("t", &[5])], Some(b"sticky"));
        assert_eq!(
            decode_assignment(&b).unwrap(),
            vec![("t".to_string(), vec![5])]
        );
        // Empty assignment bytes, an empty topic list, and a missing user-data field.
        assert!(decode_assignment(&[]).unwrap().is_empty());
        assert!(decode_assignment(&encode(1, &[], None)).unwrap().is_empty());
        let mut b = encode(0, &[("t", &[0])], None);
        b.truncate(b.len() - 4);
        assert_eq!(
            decode_assignment(&b).unwrap(),
            vec![("t".to_string(), vec![0])]
        );
    }

    #[test]
    fn rejects_malformed_assignments() {
        let b = encode(0, &[("orders", &[0, 2])], Some(b"xyz"));
        // Any cut fails except right before the (optional) user data.
        let before_user_data = b.len() - 4 - 3;
        for cut in (1..b.len()).filter(|c| *c != before_user_data) {
            assert!(decode_assignment(&b[..cut]).is_err(), "cut at {cut}");
        }
        assert!(decode_assignment(&b[..before_user_data]).is_ok());
        // A huge array count must not allocate or loop.
        let mut b = 0_i16.to_be_bytes().to_vec();
        b.extend_from_slice(&i32::MAX.to_be_bytes());
        assert!(decode_assignment(&b).is_err());
        let mut b = 0_i16.to_be_bytes().to_vec();
        b.extend_from_slice(&(-5_i32).to_be_bytes());
        assert!(decode_assignment(&b).is_err());
    }
}
