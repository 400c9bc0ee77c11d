//! InitProducerId v0–v5: a fresh producer id with epoch 0 for idempotent producers; for a
//! transactional id, its stable producer id with the epoch bumped (fencing older instances).

use crate::state::State;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use std::sync::Arc;

pub(crate) fn handle(
    state: &Arc<State>,
    version: i16,
    req: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let mut resp = InitProducerIdResponse::default();
    resp.producer_id = ProducerId(-1);
    resp.producer_epoch = -1;
    if let Some(id) = &req.transactional_id {
        let expected = (version >= 3).then_some((req.producer_id.0, req.producer_epoch));
        match state.init_transactional_producer(id.0.as_str(), req.transaction_timeout_ms, expected)
        {
            Ok((pid, epoch)) => {
                resp.producer_id = ProducerId(pid);
                resp.producer_epoch = epoch;
            }
            // Before v4 clients know only INVALID_PRODUCER_EPOCH for fencing.
            Err(ResponseError::ProducerFenced) if version < 4 => {
                resp.error_code = ResponseError::InvalidProducerEpoch.code()
            }
            Err(e) => resp.error_code = e.code(),
        }
        return resp;
    }
    match state.allocate_producer_id() {
        Ok(id) => {
            resp.producer_id = ProducerId(id);
            resp.producer_epoch = 0;
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot allocate a producer id");
            resp.error_code = ResponseError::KafkaStorageError.code();
        }
    }
    resp
}
